# Tiles start every 96 − 32 = 64 pixels; one more tile is added so the last one ends at the edge.
rows = len(range(0, 960 - 96 + 1, 64)) + (1 if (960 - 96) % 64 else 0)  # 14 starts from 0 to 832, then 864
cols = len(range(0, 1280 - 96 + 1, 64)) + (1 if (1280 - 96) % 64 else 0)
answer = rows * cols
exercises.check_tile_count(answer, height=960, width=1280, tile_size=96, overlap=32)
