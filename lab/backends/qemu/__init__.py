"""qemu backend: VM nodes that boot their target's own kernel, reached over SSH."""
