"""What a run leaves in its workdir: checkpoints, `config.json` and `result.json` records, metrics trackers."""
