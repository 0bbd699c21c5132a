answer = 256 // 2**4  # each pooling halves: 256 -> 128 -> 64 -> 32 -> 16
exercises.check_size_after_pooling(answer, in_size=256, num_pools=4)
