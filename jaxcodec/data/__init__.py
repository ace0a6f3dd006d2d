"""Media input and output: video and audio readers and writers, dataset folders, sample clips."""
