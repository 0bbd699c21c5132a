import sys; sys.path.insert(0, "/work/main/tests")
from test_studio import *
def test_dbg(trained, val_data):
    viewer = PredictionViewer(trained, val_data, max_upload_side=100, max_upload_bytes=200_000)
    rng = np.random.default_rng(0)
    rng.integers(0, 255, (120, 64, 3), dtype=np.uint8); rng.integers(0, 255, (20, 40, 3), dtype=np.uint8)
    picture = rng.integers(0, 255, (40, 70, 3), dtype=np.uint8)
    assert viewer.predict_file(png_bytes(picture), "x.png")
    expected = sliding_window_proba(trained, picture, tile_size=TILE, overlap=TILE // 4)
    print(torch.isnan(viewer.analysis.probs).sum(), torch.isnan(expected).sum(), viewer.analysis.probs.shape, expected.shape)
    again = sliding_window_proba(trained, viewer.analysis.image, tile_size=TILE, overlap=TILE // 4)
    print(torch.isnan(again).sum(), (viewer.analysis.image == picture).all())
