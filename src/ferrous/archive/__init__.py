"""Archives of workspace files: tar compressed with zstd, packed and unpacked safely."""
