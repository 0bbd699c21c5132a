true_pos = matrix[1, 1]  # tumor predicted as tumor: 500
false_pos = matrix[0, 1]  # stroma predicted as tumor: 300
false_neg = matrix[1, 0]  # tumor predicted as stroma: 200
answer = true_pos / (true_pos + false_pos + false_neg)
exercises.check_iou(answer, matrix, class_index=1)
