"""Writers that serialise `FileScores`; none of them computes scores."""
