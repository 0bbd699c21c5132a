stroma_cost = -np.log(0.95)  # each stroma pixel: the prediction gives its true class 0.95
tumor_cost = -np.log(0.05)  # each tumor pixel: only 0.05
answer = 0.98 * stroma_cost + 0.02 * tumor_cost  # the mean over all pixels
exercises.check_missed_tumor_cross_entropy(answer, tumor_share=0.02, p_tumor=0.05)
