"""Published CamVid numbers and the classes the study follows closely.

The rows the book sets beside the study's own scores, all on the 233-image CamVid test split,
11 classes, scored on the native 360 x 480 labels (the protocol of the study's own test column).
"""

from __future__ import annotations

__all__ = ["THIN_CLASSES", "PUBLISHED_CAMVID", "PUBLISHED_CAMVID_PER_CLASS"]

#: The thin classes whose IoU the study follows (per data set).
THIN_CLASSES = {
    "camvid": ("Pole", "SignSymbol", "Pedestrian", "Bicyclist"),
    "synthetic": ("pole", "wire"),
}

#: Published mIoU (%) on the 233-image CamVid test split, 11 classes, 360 x 480, as tabulated
#: by the ENet and FC-DenseNet papers (the ENet paper, Table 2; the FC-DenseNet paper, Table 2).
PUBLISHED_CAMVID = (
    {"method": "SegNet", "test mIoU %": 46.4, "from scratch": False},
    {"method": "ENet", "test mIoU %": 51.3, "from scratch": True},
    {"method": "FCN-8", "test mIoU %": 57.0, "from scratch": False},
    {"method": "DeepLab-LargeFOV", "test mIoU %": 61.6, "from scratch": False},
    {"method": "Dilation8", "test mIoU %": 65.3, "from scratch": False},
    {"method": "FC-DenseNet103", "test mIoU %": 66.9, "from scratch": True},
)

#: Published per-class test IoU (%) on the same split, from Table 2 of the FC-DenseNet paper
#: (Jegou et al. 2017), in our class names. Only the methods whose per-class row that table
#: gives; each row's mean is its published mIoU above (a test checks it to 0.05).
PUBLISHED_CAMVID_PER_CLASS = {
    "SegNet": {"Sky": 87.0, "Building": 68.7, "Pole": 16.0, "Road": 86.2, "Pavement": 60.5,
               "Tree": 52.0, "SignSymbol": 13.4, "Fence": 17.9, "Car": 58.5,
               "Pedestrian": 25.3, "Bicyclist": 24.8},
    "FCN-8": {"Sky": 88.7, "Building": 77.8, "Pole": 19.9, "Road": 91.2, "Pavement": 72.7,
              "Tree": 71.0, "SignSymbol": 32.7, "Fence": 24.4, "Car": 76.1,
              "Pedestrian": 41.7, "Bicyclist": 31.0},
    "DeepLab-LargeFOV": {"Sky": 89.0, "Building": 81.5, "Pole": 14.3, "Road": 92.2,
                         "Pavement": 75.4, "Tree": 74.6, "SignSymbol": 42.3, "Fence": 27.2,
                         "Car": 82.2, "Pedestrian": 48.4, "Bicyclist": 50.1},
    "FC-DenseNet103": {"Sky": 93.0, "Building": 83.0, "Pole": 37.8, "Road": 94.5,
                       "Pavement": 82.2, "Tree": 77.3, "SignSymbol": 43.9, "Fence": 37.1,
                       "Car": 77.3, "Pedestrian": 59.6, "Bicyclist": 50.5},
}
