"""The piñata as a unikernel: a static manifest, a sandboxed launcher, reproducible images.

Modules: `manifest` (the TOML manifest and its refusals), `launcher` (the
tender: listeners, boot files, eager imports, fork, report), `sandbox` (the
order in which the process gives up the world), `seccomp` and `bpf` (the
system-call allowlist), `landlock` (file system and network), `probe` (a
compromised unikernel, for tests), `guest` (the appliance as the entry
point), `image` (reproducible toy and real images with their software
list), `syscall_table` (system call numbers, from the kernel headers).
"""
