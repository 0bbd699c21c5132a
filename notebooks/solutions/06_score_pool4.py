# pool4 lies at 1/16 of the input: 128 / 16 = 8; score_pool4 gives one score per class: 2 channels.
answer = (2, 8, 8)
exercises.check_feature_size(answer, fcn, "score_pool4", input_size=(3, 128, 128))
