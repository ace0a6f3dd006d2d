"""Real photographs installable here, and how they are split for the image codec.

Sources (``experiments/prepare_images.py`` downloads the Debian packages with
``apt-get download``; scikit-image is a pip package): only photographs, picked by eye
from each package (illustrations and renders left out; gnome-backgrounds 43 holds none).
Held out, never trained on: scikit-image's colour photographs (the classic test images)
and a fixed quarter of the Debian photographs (by a hash of the name, so whole photos,
never crops of a trained one). Licences are those of each package's copyright file.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PhotoSource:
    package: str  # a Debian package, or "pip:scikit-image"
    folder: str  # where its photos lie inside the package
    licence: str
    names: tuple[str, ...]  # file stems (plasma: wallpaper folder names)


SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource("plasma-workspace-wallpapers", "usr/share/wallpapers", "GPL-2+ (KDE Visual Design Group)",
                ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                 "Kite", "OneStandsOut", "Path", "summer_1am")),
    PhotoSource("mate-backgrounds", "usr/share/backgrounds/mate/nature", "GPL-2+ (photographers named in the "
                "package's copyright file)",
                ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
                 "TwoWings", "Wood", "YellowFlower")),
    PhotoSource("lomiri-wallpapers-16.04", "usr/share/backgrounds", "CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0 per photo",
                ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
                 "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
                 "analogpattern_by_Peter_Nerlich", "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi",
                 "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
                 "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")),
    PhotoSource("lomiri-wallpapers-20.04", "usr/share/backgrounds", "CC-BY-SA-3.0", ("Kleiber_by_Lukas_Baubkus",)),
    PhotoSource("pip:scikit-image", "skimage/data", "public domain / CC0 (astronaut, chelsea, coffee, rocket); "
                "Middlebury 2014 stereo (motorcycle); camera: the classic cameraman",
                ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "camera")),
)


def is_held_out(source: PhotoSource, name: str) -> bool:
    """scikit-image's photos, and a fixed quarter of the others, are evaluation only."""
    return source.package.startswith("pip:") or zlib.crc32(name.encode()) % 4 == 0
