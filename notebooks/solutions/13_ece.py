# Bins of width 0.2: (0.4, 0.6] holds 0.55 and 0.58 (one right: accuracy 0.5, mean confidence 0.565);
# (0.8, 1.0] holds the other four (three right: accuracy 0.75, mean confidence 0.9525). The other bins are empty.
confidences = np.array([0.55, 0.58, 0.90, 0.95, 0.97, 0.99])
correct = np.array([1, 0, 1, 1, 0, 1])
answer = 2 / 6 * abs(0.5 - 0.565) + 4 / 6 * abs(0.75 - 0.9525)
exercises.check_ece(answer, confidences, correct, num_bins=5)
