"""The process a run lives in: devices and their peaks, `jax.distributed`, preemption signals, the persistent
compilation cache, and the progress line."""
