"""What gets compiled: the train state laid out on the mesh, the train and eval steps, the optimizer and
its schedules, the sharding rules that place arrays, FLOPs, and which runs may share one program."""
