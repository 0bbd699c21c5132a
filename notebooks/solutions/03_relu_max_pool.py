rectified = np.maximum(x, 0)  # ReLU: negatives become 0
answer = [
    [rectified[0:2, 0:2].max(), rectified[0:2, 2:4].max()],  # top-left and top-right 2x2 blocks
    [rectified[2:4, 0:2].max(), rectified[2:4, 2:4].max()],  # bottom-left and bottom-right
]
exercises.check_relu_max_pool(answer, x)
