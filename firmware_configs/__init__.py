"""Device targets, one YAML per device, validated by edgeperc.targets."""
