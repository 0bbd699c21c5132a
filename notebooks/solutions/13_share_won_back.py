# The shift cost 0.90 − 0.67 = 0.23 of tumor IoU; normalisation won back 0.85 − 0.67 = 0.18 of it.
answer = (0.85 - 0.67) / (0.90 - 0.67)
exercises.check_share_won_back(answer, home_iou=0.90, shifted_iou=0.67, fixed_iou=0.85)
