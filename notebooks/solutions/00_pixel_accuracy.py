answer = (preds == masks).mean()  # True counts as 1: the share of pixels where the prediction equals the label
exercises.check_pixel_accuracy(answer, preds, masks)
