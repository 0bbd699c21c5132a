answer = (mask == 1).sum() / mask.size  # tumor pixels divided by all pixels
exercises.check_class_share(answer, mask, class_index=1)
