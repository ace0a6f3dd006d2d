"""The speech recipe's split: held-out speakers never train, in languages no training prompt is in."""

from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcodec.data.speech import HELD_OUT_SPEAKERS, SOURCES, destination, speakers_of, split_of

PROMPT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=24)


@settings(max_examples=200, deadline=None)
@given(prompts=st.lists(st.tuples(st.sampled_from(SOURCES), PROMPT, st.booleans()), min_size=1, max_size=60))
def test_no_speaker_is_both_trained_on_and_held_out(prompts):
    where: dict[str, set[str]] = {}
    for source, prompt, nested in prompts:
        member = f"usr/share/asterisk/sounds/{source.language}_voice/{'digits/' if nested else ''}{prompt}{source.suffix}"
        rel = destination(source, member)
        split, speaker = rel.parts[0], rel.parts[1]
        assert speaker == source.speaker and rel.name.startswith(source.language + "-")
        assert split == split_of(source, rel.name.removeprefix(source.language + "-").removesuffix(".flac"))
        where.setdefault(speaker, set()).add(split)
    for speaker, splits in where.items():
        assert not ("eval" in splits and ({"train", "eval-seen"} & splits))
        assert ("eval" in splits) == (speaker in HELD_OUT_SPEAKERS)


def test_held_out_speakers_speak_languages_no_training_source_has():
    assert len(speakers_of("eval")) >= 2
    trained = {s.language for s in SOURCES if s.speaker not in HELD_OUT_SPEAKERS}
    held = {s.language for s in SOURCES if s.speaker in HELD_OUT_SPEAKERS}
    assert held and not (held & trained)
    assert all(s.wideband for s in SOURCES if s.speaker in HELD_OUT_SPEAKERS)  # PESQ-wb needs 16 kHz sources
    assert speakers_of("train").isdisjoint(speakers_of("eval"))


def test_prompt_names_keep_one_folder_level_and_narrowband_never_evaluates():
    en = SOURCES[0]
    rel = destination(en, "usr/share/asterisk/sounds/en_US_f_Allison/digits/1.g722")
    assert rel.name == "en-digits_1.flac" and rel.parts[1] == "allison-smith"
    narrow = next(s for s in SOURCES if not s.wideband)
    assert {split_of(narrow, f"p{i}") for i in range(300)} == {"train"}
    assert {split_of(en, f"p{i}") for i in range(300)} == {"train", "eval-seen"}
