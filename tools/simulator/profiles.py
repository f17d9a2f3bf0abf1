"""What the simulator needs and the seed's reference data does not carry: relative dossier volumes
per agency and TTHC, the domains each department handles, fee amounts, and which old communes
each unit formed on 1/7/2025 absorbed (to give it their volume and their district's profile)."""

from __future__ import annotations

from schemas.v1.events import Level

# Departments: the domains whose TTHC they handle, relative volume.
DEPARTMENTS: dict[str, tuple[tuple[str, ...], float]] = {
    "STNMT": (("dat_dai", "moi_truong"), 12.0),
    "STP": (("ly_lich_tu_phap",), 5.0),
    "SXD": (("xay_dung",), 1.0),
    "SKHDT": (("dang_ky_kinh_doanh",), 4.0),
    "SGTVT": (("giao_thong",), 6.0),
    "SYT": (("y_te",), 1.5),
    "SLDTBXH": (("lao_dong", "bao_tro_xa_hoi"), 2.5),
    "SCT": (("luu_thong_hang_hoa",), 0.8),
    "SGDDT": (("giao_duc",), 1.0),
    "SNNPTNT": (("thuy_san",), 1.2),
}

# Relative volumes of the pre-1/7/2025 districts and communes.
OLD_WEIGHTS: dict[str, float] = {
    "NHATRANG": 6.0,
    "CAMRANH": 3.0,
    "NINHHOA": 3.2,
    "DIENKHANH": 2.6,
    "CAMLAM": 2.4,
    "VANNINH": 2.2,
    "KHANHVINH": 0.7,
    "KHANHSON": 0.6,
    "TRUONGSA": 0.05,
    "PHUONG_VINHHAI": 2.5,
    "PHUONG_LOCTHO": 2.0,
    "PHUONG_PHUOCHAI": 2.2,
    "PHUONG_VINHNGUYEN": 2.0,
    "XA_VINHLUONG": 1.5,
    "XA_PHUOCDONG": 1.6,
    "PHUONG_CAMNGHIA": 1.4,
    "PHUONG_BANGOI": 1.6,
    "XA_CAMTHINHDONG": 1.0,
    "XA_CAMLAP": 0.6,
    "PHUONG_NINHHIEP": 1.8,
    "PHUONG_NINHDA": 1.2,
    "XA_NINHXUAN": 1.0,
    "XA_NINHPHUOC": 0.9,
    "TT_DIENKHANH": 1.5,
    "XA_DIENAN": 1.1,
    "XA_DIENPHU": 1.2,
    "XA_SUOIHIEP": 1.0,
    "TT_CAMDUC": 1.4,
    "XA_CAMHAIDONG": 1.0,
    "XA_CAMHAITAY": 0.9,
    "XA_SUOITAN": 0.8,
    "TT_VANGIA": 1.4,
    "XA_VANTHANG": 0.9,
    "XA_DAILANH": 0.7,
    "XA_VANTHANH": 0.6,
    "TT_KHANHVINH": 0.6,
    "XA_KHANHHIEP": 0.3,
    "XA_SONGCAU": 0.3,
    "TT_TOHAP": 0.5,
    "XA_SONBINH": 0.3,
    "XA_THANHSON": 0.25,
    "TT_TRUONGSA": 0.03,
    "XA_SONGTUTAY": 0.02,
    "XA_SINHTON": 0.02,
}

# Units formed on 1/7/2025 → the old communes they absorbed (some keep an old code). Each takes
# over its communes' volume plus a share of their district's, whose procedures moved down to it.
MERGED: dict[str, tuple[str, ...]] = {
    "PHUONG_BACNHATRANG": ("PHUONG_VINHHAI", "XA_VINHLUONG"),
    "PHUONG_NHATRANG": ("PHUONG_LOCTHO", "PHUONG_PHUOCHAI"),
    "PHUONG_NAMNHATRANG": ("PHUONG_VINHNGUYEN", "XA_PHUOCDONG"),
    "PHUONG_CAMRANH": ("PHUONG_CAMNGHIA",),
    "PHUONG_BANGOI": ("PHUONG_BANGOI",),
    "XA_NAMCAMRANH": ("XA_CAMTHINHDONG", "XA_CAMLAP"),
    "PHUONG_NINHHOA": ("PHUONG_NINHHIEP", "PHUONG_NINHDA"),
    "PHUONG_DONGNINHHOA": ("XA_NINHPHUOC",),
    "XA_TAYNINHHOA": ("XA_NINHXUAN",),
    "XA_DIENKHANH": ("TT_DIENKHANH", "XA_DIENAN", "XA_DIENPHU"),
    "XA_SUOIHIEP": ("XA_SUOIHIEP",),
    "XA_CAMLAM": ("TT_CAMDUC", "XA_CAMHAIDONG", "XA_CAMHAITAY"),
    "XA_SUOIDAU": ("XA_SUOITAN",),
    "XA_VANNINH": ("TT_VANGIA",),
    "XA_VANTHANG": ("XA_VANTHANG",),
    "XA_DAILANH": ("XA_DAILANH", "XA_VANTHANH"),
    "XA_KHANHVINH": ("TT_KHANHVINH", "XA_KHANHHIEP", "XA_SONGCAU"),
    "XA_KHANHSON": ("TT_TOHAP", "XA_SONBINH"),
    "XA_TAYKHANHSON": ("XA_THANHSON",),
    "DACKHU_TRUONGSA": ("TT_TRUONGSA", "XA_SONGTUTAY", "XA_SINHTON"),
}

# For units the seed may add without a profile here.
DEFAULT_WEIGHT = {Level.province: 1.0, Level.district: 2.0, Level.commune: 1.0}

# Per TTHC: relative dossier volume and the fee in VND per dossier (the catalogue says only
# whether there is one).
VOLUME_AND_FEE: dict[str, tuple[float, int]] = {
    "1.004227": (10, 320_000),
    "1.004203": (4, 100_000),
    "2.000983": (6, 80_000),
    "1.004221": (3, 150_000),
    "1.004269": (2, 30_000),
    "1.004238": (3, 250_000),
    "1.003003": (2, 300_000),
    "1.001193": (10, 0),
    "1.000894": (3, 0),
    "1.000656": (3, 0),
    "1.004873": (5, 0),
    "2.000635": (4, 8_000),
    "1.004859": (2, 15_000),
    "1.001695": (0.4, 75_000),
    "2.000815": (20, 2_000),
    "2.001008": (4, 2_000),
    "2.000884": (5, 10_000),
    "2.001035": (2, 50_000),
    "2.000575": (3, 100_000),
    "1.010027": (2, 50_000),
    "2.002036": (3, 50_000),
    "1.009794": (3, 75_000),
    "1.009874": (0.7, 300_000),
    "1.009972": (0.3, 5_000_000),
    "1.002804": (8, 135_000),
    "1.002820": (0.5, 135_000),
    "1.002856": (1, 0),
    "1.001978": (3, 0),
    "1.000459": (0.5, 600_000),
    "1.001776": (1.5, 0),
    "1.001758": (0.6, 0),
    "1.004616": (1, 360_000),
    "1.010727": (0.3, 6_000_000),
    "2.001914": (1.5, 0),
    "1.004359": (1.2, 40_000),
    "2.000488": (6, 200_000),
    "2.000620": (0.4, 2_200_000),
    "2.000633": (0.5, 1_100_000),
}
DEFAULT_VOLUME_AND_FEE = (0.5, 50_000)
