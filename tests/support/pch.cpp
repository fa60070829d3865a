// Builds the precompiled Catch2 header that test binaries reuse.
