"""Deployment bundles: build, sign, verify, stage into a rootfs, activate at first boot, roll back.

One module per job: ``manifest`` (bundle.json), ``signing`` (Ed25519), ``archive`` (tar, streamed
and checked), ``elf`` (what a library was built for), ``libraries`` (which go in), ``latency``
(baselines and checks on the bundle's own models), ``create``, ``verify``, ``layout`` (rootfs
paths, state file, atomic file operations), ``stage``, ``activate``, ``inspect``. See docs/bundles.md.
"""
