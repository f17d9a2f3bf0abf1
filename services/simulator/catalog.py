"""Reference data for Khánh Hòa's one-stop shop: agencies, domains (lĩnh vực), procedures (TTHC).

The org tree is the pre-1/7/2025 one (province → district → commune), which is what the history the
simulator backfills looks like. Procedure codes follow the national database's format and are
representative, not an authoritative extract. `weight` fields are relative dossier volumes, used
only by the simulator.

Labels are the one place Vietnamese appears for these codes: other modules import them.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.v1.events import Channel, Level


@dataclass(frozen=True, slots=True)
class Agency:
    code: str
    name: str
    level: Level
    parent: str | None  # None for departments and districts; the district for a commune
    weight: float
    domains: tuple[str, ...] = ()  # departments only: the domains whose TTHC they handle


@dataclass(frozen=True, slots=True)
class Domain:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Procedure:
    code: str  # as printed in the national database and carried in events, e.g. "1.004227"
    name: str
    domain: str
    levels: tuple[Level, ...]
    processing_days: int  # working days between receipt and the promised return date
    fee_vnd: int  # 0: no fee or charge
    paper_result: bool
    online: bool  # offered as an online public service
    weight: float

    @property
    def fee_required(self) -> bool:
        return self.fee_vnd > 0


DOMAINS: tuple[Domain, ...] = (
    Domain("dat_dai", "Đất đai"),
    Domain("ho_tich", "Hộ tịch"),
    Domain("xay_dung", "Xây dựng"),
    Domain("dang_ky_kinh_doanh", "Đăng ký kinh doanh"),
    Domain("chung_thuc", "Chứng thực"),
    Domain("lao_dong", "Lao động, việc làm"),
    Domain("giao_thong", "Đường bộ"),
    Domain("y_te", "Y tế"),
    Domain("moi_truong", "Môi trường"),
    Domain("bao_tro_xa_hoi", "Bảo trợ xã hội"),
    Domain("giao_duc", "Giáo dục"),
    Domain("ly_lich_tu_phap", "Lý lịch tư pháp"),
    Domain("thuy_san", "Thủy sản"),
    Domain("luu_thong_hang_hoa", "Lưu thông hàng hóa trong nước"),
)

DOMAIN_LABELS: dict[str, str] = {d.code: d.name for d in DOMAINS}
LEVEL_LABELS: dict[str, str] = {
    Level.province.value: "Cấp tỉnh",
    Level.district.value: "Cấp huyện",
    Level.commune.value: "Cấp xã",
}
CHANNEL_LABELS: dict[str, str] = {
    Channel.online.value: "Trực tuyến",
    Channel.direct.value: "Trực tiếp",
    Channel.postal.value: "Bưu chính công ích",
}

_DEPARTMENTS: tuple[tuple[str, str, tuple[str, ...], float], ...] = (
    ("STNMT", "Sở Tài nguyên và Môi trường", ("dat_dai", "moi_truong"), 12.0),
    ("STP", "Sở Tư pháp", ("ly_lich_tu_phap",), 5.0),
    ("SXD", "Sở Xây dựng", ("xay_dung",), 1.0),
    ("SKHDT", "Sở Kế hoạch và Đầu tư", ("dang_ky_kinh_doanh",), 4.0),
    ("SGTVT", "Sở Giao thông vận tải", ("giao_thong",), 6.0),
    ("SYT", "Sở Y tế", ("y_te",), 1.5),
    ("SLDTBXH", "Sở Lao động - Thương binh và Xã hội", ("lao_dong", "bao_tro_xa_hoi"), 2.5),
    ("SCT", "Sở Công Thương", ("luu_thong_hang_hoa",), 0.8),
    ("SGDDT", "Sở Giáo dục và Đào tạo", ("giao_duc",), 1.0),
    ("SNNPTNT", "Sở Nông nghiệp và Phát triển nông thôn", ("thuy_san",), 1.2),
)

_DISTRICTS: tuple[tuple[str, str, float], ...] = (
    ("NHATRANG", "UBND thành phố Nha Trang", 6.0),
    ("CAMRANH", "UBND thành phố Cam Ranh", 3.0),
    ("NINHHOA", "UBND thị xã Ninh Hòa", 3.2),
    ("DIENKHANH", "UBND huyện Diên Khánh", 2.6),
    ("CAMLAM", "UBND huyện Cam Lâm", 2.4),
    ("VANNINH", "UBND huyện Vạn Ninh", 2.2),
    ("KHANHVINH", "UBND huyện Khánh Vĩnh", 0.7),
    ("KHANHSON", "UBND huyện Khánh Sơn", 0.6),
    ("TRUONGSA", "UBND huyện Trường Sa", 0.05),
)

# (district, code, name, weight): a handful of communes and wards per district.
_COMMUNES: tuple[tuple[str, str, str, float], ...] = (
    ("NHATRANG", "PHUONG_VINHHAI", "UBND phường Vĩnh Hải", 2.5),
    ("NHATRANG", "PHUONG_LOCTHO", "UBND phường Lộc Thọ", 2.0),
    ("NHATRANG", "PHUONG_PHUOCHAI", "UBND phường Phước Hải", 2.2),
    ("NHATRANG", "PHUONG_VINHNGUYEN", "UBND phường Vĩnh Nguyên", 2.0),
    ("NHATRANG", "XA_VINHLUONG", "UBND xã Vĩnh Lương", 1.5),
    ("NHATRANG", "XA_PHUOCDONG", "UBND xã Phước Đồng", 1.6),
    ("CAMRANH", "PHUONG_CAMNGHIA", "UBND phường Cam Nghĩa", 1.4),
    ("CAMRANH", "PHUONG_BANGOI", "UBND phường Ba Ngòi", 1.6),
    ("CAMRANH", "XA_CAMTHINHDONG", "UBND xã Cam Thịnh Đông", 1.0),
    ("CAMRANH", "XA_CAMLAP", "UBND xã Cam Lập", 0.6),
    ("NINHHOA", "PHUONG_NINHHIEP", "UBND phường Ninh Hiệp", 1.8),
    ("NINHHOA", "PHUONG_NINHDA", "UBND phường Ninh Đa", 1.2),
    ("NINHHOA", "XA_NINHXUAN", "UBND xã Ninh Xuân", 1.0),
    ("NINHHOA", "XA_NINHPHUOC", "UBND xã Ninh Phước", 0.9),
    ("DIENKHANH", "TT_DIENKHANH", "UBND thị trấn Diên Khánh", 1.5),
    ("DIENKHANH", "XA_DIENAN", "UBND xã Diên An", 1.1),
    ("DIENKHANH", "XA_DIENPHU", "UBND xã Diên Phú", 1.2),
    ("DIENKHANH", "XA_SUOIHIEP", "UBND xã Suối Hiệp", 1.0),
    ("CAMLAM", "TT_CAMDUC", "UBND thị trấn Cam Đức", 1.4),
    ("CAMLAM", "XA_CAMHAIDONG", "UBND xã Cam Hải Đông", 1.0),
    ("CAMLAM", "XA_CAMHAITAY", "UBND xã Cam Hải Tây", 0.9),
    ("CAMLAM", "XA_SUOITAN", "UBND xã Suối Tân", 0.8),
    ("VANNINH", "TT_VANGIA", "UBND thị trấn Vạn Giã", 1.4),
    ("VANNINH", "XA_VANTHANG", "UBND xã Vạn Thắng", 0.9),
    ("VANNINH", "XA_DAILANH", "UBND xã Đại Lãnh", 0.7),
    ("VANNINH", "XA_VANTHANH", "UBND xã Vạn Thạnh", 0.6),
    ("KHANHVINH", "TT_KHANHVINH", "UBND thị trấn Khánh Vĩnh", 0.6),
    ("KHANHVINH", "XA_KHANHHIEP", "UBND xã Khánh Hiệp", 0.3),
    ("KHANHVINH", "XA_SONGCAU", "UBND xã Sông Cầu", 0.3),
    ("KHANHSON", "TT_TOHAP", "UBND thị trấn Tô Hạp", 0.5),
    ("KHANHSON", "XA_SONBINH", "UBND xã Sơn Bình", 0.3),
    ("KHANHSON", "XA_THANHSON", "UBND xã Thành Sơn", 0.25),
    ("TRUONGSA", "TT_TRUONGSA", "UBND thị trấn Trường Sa", 0.03),
    ("TRUONGSA", "XA_SONGTUTAY", "UBND xã Song Tử Tây", 0.02),
    ("TRUONGSA", "XA_SINHTON", "UBND xã Sinh Tồn", 0.02),
)

AGENCIES: tuple[Agency, ...] = (
    *(Agency(c, n, Level.province, None, w, doms) for c, n, doms, w in _DEPARTMENTS),
    *(Agency(c, n, Level.district, None, w) for c, n, w in _DISTRICTS),
    *(Agency(c, n, Level.commune, d, w) for d, c, n, w in _COMMUNES),
)

# Two lines per TTHC: national code, domain, levels (P province, D district, C commune), working
# days, fee in VND (0: none), flags (P paper result required, O online service), relative volume;
# then the name.
_PROCEDURE_TABLE = """
1.004227  dat_dai             P    10     320000  PO  10
    Đăng ký biến động quyền sử dụng đất do chuyển nhượng, thừa kế, tặng cho
1.004203  dat_dai             P     7     100000  PO   4
    Cấp đổi Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất
2.000983  dat_dai             P     3      80000  PO   6
    Đăng ký thế chấp quyền sử dụng đất, tài sản gắn liền với đất
1.004221  dat_dai             P    15     150000  PO   3
    Tách thửa hoặc hợp thửa đất
1.004269  dat_dai             P     2      30000  -O   2
    Cung cấp dữ liệu đất đai
1.004238  dat_dai             D    30     250000  PO   3
    Đăng ký, cấp Giấy chứng nhận quyền sử dụng đất lần đầu cho hộ gia đình, cá nhân
1.003003  dat_dai             D    15     300000  PO   2
    Chuyển mục đích sử dụng đất phải được phép đối với hộ gia đình, cá nhân
1.001193  ho_tich             C     1          0  PO  10
    Đăng ký khai sinh
1.000894  ho_tich             C     1          0  PO   3
    Đăng ký kết hôn
1.000656  ho_tich             C     1          0  PO   3
    Đăng ký khai tử
1.004873  ho_tich             C     3          0  PO   5
    Cấp Giấy xác nhận tình trạng hôn nhân
2.000635  ho_tich             DC    1       8000  PO   4
    Cấp bản sao trích lục hộ tịch
1.004859  ho_tich             DC    3      15000  PO   2
    Đăng ký thay đổi, cải chính, bổ sung thông tin hộ tịch
1.001695  ho_tich             D    15      75000  PO   0.4
    Đăng ký khai sinh có yếu tố nước ngoài
2.000815  chung_thuc          DC    1       2000  P-  20
    Chứng thực bản sao từ bản chính giấy tờ, văn bản do cơ quan có thẩm quyền cấp
2.001008  chung_thuc          DC    1       2000  -O   4
    Cấp bản sao điện tử được chứng thực từ bản chính
2.000884  chung_thuc          DC    1      10000  P-   5
    Chứng thực chữ ký trong các giấy tờ, văn bản
2.001035  chung_thuc          C     2      50000  P-   2
    Chứng thực hợp đồng, giao dịch liên quan đến tài sản là động sản, quyền sử dụng đất
2.000575  dang_ky_kinh_doanh  D     3     100000  PO   3
    Đăng ký thành lập hộ kinh doanh
1.010027  dang_ky_kinh_doanh  P     3      50000  -O   2
    Đăng ký thành lập công ty trách nhiệm hữu hạn một thành viên
2.002036  dang_ky_kinh_doanh  P     3      50000  -O   3
    Đăng ký thay đổi nội dung đăng ký doanh nghiệp
1.009794  xay_dung            D    15      75000  PO   3
    Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ
1.009874  xay_dung            P    20     300000  PO   0.7
    Cấp chứng chỉ hành nghề hoạt động xây dựng hạng II, hạng III
1.009972  xay_dung            P    20    5000000  P-   0.3
    Thẩm định Báo cáo nghiên cứu khả thi đầu tư xây dựng
1.002804  giao_thong          P     5     135000  PO   8
    Đổi Giấy phép lái xe do ngành Giao thông vận tải cấp
1.002820  giao_thong          P     5     135000  PO   0.5
    Cấp Giấy phép lái xe quốc tế
1.002856  giao_thong          P     2          0  PO   1
    Cấp phù hiệu xe ô tô kinh doanh vận tải
1.001978  lao_dong            P    20          0  PO   3
    Giải quyết hưởng trợ cấp thất nghiệp
1.000459  lao_dong            P     5     600000  PO   0.5
    Cấp giấy phép lao động cho người lao động nước ngoài làm việc tại Việt Nam
1.001776  bao_tro_xa_hoi      D    20          0  PO   1.5
    Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng
1.001758  bao_tro_xa_hoi      D     5          0  P-   0.6
    Hỗ trợ chi phí mai táng cho đối tượng bảo trợ xã hội
1.004616  y_te                P    20     360000  PO   1
    Cấp chứng chỉ hành nghề khám bệnh, chữa bệnh
1.010727  moi_truong          P    20    6000000  PO   0.3
    Cấp giấy phép môi trường (cấp tỉnh)
2.001914  giao_duc            PD    1          0  PO   1.5
    Cấp bản sao văn bằng, chứng chỉ từ sổ gốc
1.004359  thuy_san            P     6      40000  PO   1.2
    Cấp văn bản chấp thuận đóng mới, cải hoán, thuê, mua tàu cá
2.000488  ly_lich_tu_phap     P    10     200000  PO   6
    Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam, người nước ngoài cư trú tại Việt Nam
2.000620  luu_thong_hang_hoa  P    15    2200000  PO   0.4
    Cấp Giấy phép bán buôn sản phẩm thuốc lá
2.000633  luu_thong_hang_hoa  D    10    1100000  PO   0.5
    Cấp Giấy phép bán lẻ sản phẩm rượu
"""

_LEVEL_LETTERS = {"P": Level.province, "D": Level.district, "C": Level.commune}


def _parse_procedures(table: str) -> tuple[Procedure, ...]:
    lines = table.strip("\n").splitlines()
    procedures = []
    for spec, name in zip(lines[::2], lines[1::2], strict=True):
        code, domain, levels, days, fee, flags, weight = spec.split()
        procedures.append(
            Procedure(
                code=code,
                name=name.strip(),
                domain=domain,
                levels=tuple(_LEVEL_LETTERS[letter] for letter in levels),
                processing_days=int(days),
                fee_vnd=int(fee),
                paper_result="P" in flags,
                online="O" in flags,
                weight=float(weight),
            )
        )
    return tuple(procedures)


PROCEDURES: tuple[Procedure, ...] = _parse_procedures(_PROCEDURE_TABLE)

_AGENCY_INDEX = {a.code: a for a in AGENCIES}
_PROCEDURE_INDEX = {p.code: p for p in PROCEDURES}


def agency_by_code(code: str) -> Agency | None:
    return _AGENCY_INDEX.get(code)


def procedure_by_code(code: str) -> Procedure | None:
    """Look up by national code ("1.004227"), as carried in dossier events."""
    return _PROCEDURE_INDEX.get(code)


def procedures_for(agency: Agency) -> tuple[Procedure, ...]:
    """The TTHC an agency handles: by level, and for a department also by its domains."""
    return tuple(
        p
        for p in PROCEDURES
        if agency.level in p.levels
        and (agency.level is not Level.province or p.domain in agency.domains)
    )
