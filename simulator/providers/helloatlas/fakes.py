"""Deterministic extraction results for HelloAtlas documents.

Document ``i`` of a batch is a pure function of ``(seed, batch_id, i)`` and what was uploaded
for it (its ``document_id`` and ``file_url``), generated only when its page is read. Data
comes from Faker's ``en_IN`` locale plus the real number formats: Aadhaar numbers carry a
valid Verhoeff check digit, PANs follow ``AAAAA9999A`` (4th letter ``P``, 5th the surname's
initial), GSTINs carry their mod-36 check character, and cities, states, PIN prefixes, RTO
codes and GST state codes agree with each other.

The document type is detected from the file URL: the file name (the URL's last path
segment) is split into words at every non-letter, and the first word that begins with a
keyword of :data:`KEYWORDS` picks the type; with none, a hash of the URL picks it. Words of
:data:`MAGIC` steer the outcome.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from simulator.ids import IdFactory

if TYPE_CHECKING:
    from random import Random  # noqa: TID251 - the type only; IdFactory.derive makes them

    from faker import Faker

__all__ = [
    "DOCUMENT_TYPES",
    "KEYWORDS",
    "MAGIC",
    "DocumentFaker",
    "Traits",
    "traits_of",
    "verhoeff_check_digit",
    "verhoeff_valid",
]

DOCUMENT_TYPES = ("AADHAAR", "PAN", "DRIVING_LICENSE", "VOTER_ID", "PASSPORT", "GST_CERT")
KEYWORDS: dict[str, tuple[str, ...]] = {
    "AADHAAR": ("aadhaar", "aadhar", "adhaar", "uidai"),
    "PAN": ("pan",),
    "DRIVING_LICENSE": ("driving", "licence", "license", "dl"),
    "VOTER_ID": ("voter", "epic"),
    "PASSPORT": ("passport",),
    "GST_CERT": ("gst",),
}
MAGIC = {
    "fail": "extraction fails: file_data null, error_code 422, 'Unable to extract data'",
    "corrupt": "same as fail",
    "unknown": "the type is not recognised: file_data null, error_code 422",
    "blurry": "every confidence_score is 0.30-0.59 (and a PAN is a photo_of_photo)",
    "slow": "the document takes slow_extra_seconds longer to process",
}
FAILED = "Unable to extract data from the document"
UNIDENTIFIED = "Document type could not be identified"

Outcome = Literal["extracted", "failed", "unidentified"]


@dataclass(frozen=True, slots=True)
class Traits:
    """What a document's file URL says about it."""

    document_type: str
    outcome: Outcome
    low_confidence: bool
    slow: bool


_WORD = re.compile(r"[a-z]+")


def _words(file_url: str) -> list[str]:
    """The lower-case words of the URL's file name (the last path segment)."""
    rest = file_url.split("://", 1)[-1]
    path = rest[rest.find("/") :] if "/" in rest else ""
    path = path.split("?", 1)[0].split("#", 1)[0]
    return _WORD.findall(path.rsplit("/", 1)[-1].lower())


def traits_of(file_url: str) -> Traits:
    """The document type and magic outcome a file URL selects."""
    words = _words(file_url)
    detected = next(
        (
            kind
            for word in words
            for kind, keywords in KEYWORDS.items()
            if word.startswith(keywords)
        ),
        None,
    )
    if detected is None:
        digest = hashlib.blake2b(file_url.encode(), digest_size=8).digest()
        detected = DOCUMENT_TYPES[int.from_bytes(digest, "big") % len(DOCUMENT_TYPES)]

    def has(*magic: str) -> bool:
        return any(word.startswith(magic) for word in words)

    outcome: Outcome = "extracted"
    if has("fail", "corrupt"):
        outcome = "failed"
    elif has("unknown"):
        outcome = "unidentified"
    return Traits(detected, outcome, low_confidence=has("blurry"), slow=has("slow"))


_OUTCOMES: tuple[Outcome, ...] = ("extracted", "failed", "unidentified")


def encode_traits(traits: Traits) -> int:
    """Traits in one byte: type (3 bits), outcome (2 bits), low confidence, slow."""
    return (
        DOCUMENT_TYPES.index(traits.document_type)
        | _OUTCOMES.index(traits.outcome) << 3
        | traits.low_confidence << 5
        | traits.slow << 6
    )


def decode_traits(code: int) -> Traits:
    return Traits(
        DOCUMENT_TYPES[code & 0b111],
        _OUTCOMES[code >> 3 & 0b11],
        low_confidence=bool(code >> 5 & 1),
        slow=bool(code >> 6 & 1),
    )


# -- Verhoeff ------------------------------------------------------------------------------

_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def _verhoeff(digits: str, shift: int) -> int:
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _D[check][_P[(position + shift) % 8][int(char)]]
    return check


def verhoeff_check_digit(digits: str) -> str:
    """The Verhoeff check digit to append to ``digits``."""
    return str(_INV[_verhoeff(digits, 1)])


def verhoeff_valid(digits: str) -> bool:
    """Whether ``digits`` ends in its correct Verhoeff check digit."""
    return digits.isdigit() and _verhoeff(digits, 0) == 0


# -- places --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    city: str
    state: str
    rto: str  # vehicle registration state code
    gst: str  # GST state code
    pin: str  # first three digits of the city's PIN codes


PLACES = (
    Place("Mumbai", "Maharashtra", "MH", "27", "400"),
    Place("Pune", "Maharashtra", "MH", "27", "411"),
    Place("Nagpur", "Maharashtra", "MH", "27", "440"),
    Place("New Delhi", "Delhi", "DL", "07", "110"),
    Place("Bengaluru", "Karnataka", "KA", "29", "560"),
    Place("Mysuru", "Karnataka", "KA", "29", "570"),
    Place("Chennai", "Tamil Nadu", "TN", "33", "600"),
    Place("Coimbatore", "Tamil Nadu", "TN", "33", "641"),
    Place("Madurai", "Tamil Nadu", "TN", "33", "625"),
    Place("Kolkata", "West Bengal", "WB", "19", "700"),
    Place("Hyderabad", "Telangana", "TS", "36", "500"),
    Place("Ahmedabad", "Gujarat", "GJ", "24", "380"),
    Place("Surat", "Gujarat", "GJ", "24", "395"),
    Place("Jaipur", "Rajasthan", "RJ", "08", "302"),
    Place("Bhilwara", "Rajasthan", "RJ", "08", "311"),
    Place("Lucknow", "Uttar Pradesh", "UP", "09", "226"),
    Place("Varanasi", "Uttar Pradesh", "UP", "09", "221"),
    Place("Bhopal", "Madhya Pradesh", "MP", "23", "462"),
    Place("Indore", "Madhya Pradesh", "MP", "23", "452"),
    Place("Patna", "Bihar", "BR", "10", "800"),
    Place("Kochi", "Kerala", "KL", "32", "682"),
    Place("Thiruvananthapuram", "Kerala", "KL", "32", "695"),
    Place("Chandigarh", "Chandigarh", "CH", "04", "160"),
    Place("Guwahati", "Assam", "AS", "18", "781"),
    Place("Bhubaneswar", "Odisha", "OD", "21", "751"),
    Place("Visakhapatnam", "Andhra Pradesh", "AP", "37", "530"),
    Place("Ludhiana", "Punjab", "PB", "03", "141"),
    Place("Dehradun", "Uttarakhand", "UK", "05", "248"),
    Place("Ranchi", "Jharkhand", "JH", "20", "834"),
    Place("Raipur", "Chhattisgarh", "CG", "22", "492"),
    Place("Gurugram", "Haryana", "HR", "06", "122"),
    Place("Shimla", "Himachal Pradesh", "HP", "02", "171"),
    Place("Jammu", "Jammu and Kashmir", "JK", "01", "180"),
    Place("Panaji", "Goa", "GA", "30", "403"),
)
LANDMARKS = (
    "NEAR COMMUNITY HALL",
    "OPP BUS STAND",
    "BEHIND POST OFFICE",
    "NEAR RAILWAY STATION",
    "NEAR GOVT SCHOOL",
    "OPP HANUMAN MANDIR",
    "NEAR WATER TANK",
    "BESIDE SBI BANK",
)
TRADES = ("Traders", "Enterprises", "Industries", "Textiles", "Foods", "Agencies", "Steels")
CONSTITUTIONS = (
    ("Proprietorship", "P"),
    ("Partnership", "F"),
    ("Private Limited Company", "C"),
    ("Limited Liability Partnership", "F"),
    ("Public Limited Company", "C"),
)
GST_START = date(2017, 7, 1)
_GSTIN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PASSPORT_LETTERS = "ABCDEFGHJKLMNPRSTUVWY"
_INITIALS = "ABDGKMNPRSTV"


def gstin_check_char(first14: str) -> str:
    """The GSTIN check character (mod 36) for its first 14 characters."""
    total = 0
    for position, char in enumerate(first14):
        value = _GSTIN_CHARS.index(char) * (2 if position % 2 else 1)
        total += value // 36 + value % 36
    return _GSTIN_CHARS[(36 - total % 36) % 36]


def _upper_name(name: str) -> str:
    """A name as Indian ids print it: capitals and single spaces (Faker's have apostrophes)."""
    return " ".join(re.sub(r"[^A-Z ]", "", name.upper()).split())


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _dmy(day: date) -> str:
    return day.strftime("%d/%m/%Y")


# -- one document ----------------------------------------------------------------------------


class _Doc:
    """The draws for one document: a seeded Random, a seeded Faker and a confidence range."""

    def __init__(self, rng: Random, fake: Faker, today: date, low: bool) -> None:
        self.rng = rng
        self.fake = fake
        self.today = today
        self.low = low

    def field(self, value: str) -> dict[str, object]:
        low, high = (30, 59) if self.low else (85, 99)
        return {"value": value, "confidence_score": self.rng.randint(low, high) / 100}

    def letters(self, n: int, alphabet: str = _LETTERS) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randint(0, max(0, (last - first).days)))

    def person(self) -> tuple[str, str, str]:
        """A full name (upper case, as printed on Indian ids), the surname and the gender."""
        male = self.rng.random() < 0.5
        first = self.fake.first_name_male() if male else self.fake.first_name_female()
        surname = self.fake.last_name()
        parts = [first, surname]
        if self.rng.random() < 0.2:  # an initial first, as in Tamil Nadu ("D MANIKANDAN ...")
            parts.insert(0, self.rng.choice(_INITIALS))
        return _upper_name(" ".join(parts)), _upper_name(surname), "MALE" if male else "FEMALE"

    def birth_date(self) -> date:
        return self.day_between(_add_years(self.today, -75), _add_years(self.today, -18))

    def place(self) -> Place:
        return self.rng.choice(PLACES)

    def pin(self, place: Place) -> str:
        return place.pin + self.digits(3)

    def house(self) -> str:
        number, other = self.rng.randint(1, 999), self.rng.randint(1, 99)
        return self.rng.choice(
            (
                f"{number}",
                f"{number}/{other}",
                f"H NO {number}",
                f"{other}-{self.letters(2)}-{number}",
            )
        )

    def address(self, place: Place) -> tuple[str, dict[str, dict[str, object]]]:
        house = self.house()
        landmark = self.rng.choice(LANDMARKS)
        street = self.fake.street_name().upper()
        pin = self.pin(place)
        text = f"{house}, {landmark}, {street}, {place.city.upper()}, {place.state}, {pin}"
        formatted = {
            "state": self.field(place.state),
            "postcode": self.field(pin),
            "address_line_1": self.field(f"{house}, {landmark}"),
            "address_line_2": self.field(street),
            "city": self.field(place.city),
        }
        return text, formatted

    def pan(self, surname: str, holder: str = "P") -> str:
        return f"{self.letters(3)}{holder}{surname[:1] or 'A'}{self.digits(4)}{self.letters(1)}"


class DocumentFaker:
    """Generates documents of one simulator; Faker is loaded on first use (it is slow)."""

    def __init__(self, ids: IdFactory) -> None:
        self.ids = ids
        self._uuid_base = hashlib.blake2b(f"{ids.seed}{ids.scope}/file_uuid/".encode())

    @cached_property
    def fake(self) -> Faker:
        from faker import Faker

        return Faker("en_IN")

    def file_uuid(self, batch_id: str, index: int) -> str:
        """The file_uuid of document ``index``: a UUID4 derived from a hash."""
        return next(self.file_uuids(batch_id, index, index + 1))

    def file_uuids(self, batch_id: str, start: int, stop: int) -> Iterator[str]:
        """The file_uuids of documents ``start`` to ``stop - 1``, cheap for a million.

        One 64-byte hash gives four: document ``i`` takes quarter ``i % 4`` of the hash of
        ``(seed, batch_id, i // 4)``.
        """
        base = self._uuid_base
        group = -1
        text = ""
        for index in range(start, stop):
            if index // 4 != group:
                group = index // 4
                hasher = base.copy()
                hasher.update(f"{batch_id}/{group}".encode())
                text = hasher.hexdigest()
            h = text[(index % 4) * 32 :]
            variant = "89ab"[int(h[16], 16) & 3]
            yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"

    def processing_fraction(self, batch_id: str, index: int) -> float:
        """Where in the batch's processing window document ``index`` finishes, 0 to 1."""
        return self._rng(batch_id, index).random()

    def file_data(
        self, batch_id: str, index: int, created_at: datetime, traits: Traits
    ) -> dict[str, object]:
        """The extracted ``file_data`` of document ``index``."""
        rng = self._rng(batch_id, index)
        rng.random()  # the processing fraction
        fake = self.fake
        fake.seed_instance(rng.getrandbits(64))
        doc = _Doc(rng, fake, created_at.date(), traits.low_confidence)
        build = {
            "AADHAAR": self._aadhaar,
            "PAN": self._pan,
            "DRIVING_LICENSE": self._driving_license,
            "VOTER_ID": self._voter_id,
            "PASSPORT": self._passport,
            "GST_CERT": self._gst_cert,
        }[traits.document_type]
        fields = build(doc, batch_id, index, created_at)
        return {"document_type": traits.document_type, **fields}

    def _rng(self, batch_id: str, index: int) -> Random:
        return self.ids.derive("document", batch_id, index)

    def _aadhaar(self, doc: _Doc, batch_id: str, index: int, at: datetime) -> dict[str, object]:
        name, _, _ = doc.person()
        born = doc.birth_date()
        address, formatted = doc.address(doc.place())
        body = str(doc.rng.randint(2, 9)) + doc.digits(10)
        number = body + verhoeff_check_digit(body)
        signature = hashlib.sha256(f"{batch_id}/{index}".encode()).hexdigest()
        redact_url = (
            f"https://helloatlas-redacted.s3.ap-south-1.amazonaws.com/{batch_id}/"
            f"{self.file_uuid(batch_id, index)}.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Date={at.strftime('%Y%m%dT%H%M%SZ')}&X-Amz-Expires=3600"
            f"&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
        )
        return {
            "name": doc.field(name),
            "date_of_birth": doc.field(_dmy(born)),
            "address": doc.field(address),
            "formatted_address": formatted,
            "aadhaar_number": {
                **doc.field(f"{number[:4]} {number[4:8]} {number[8:]}"),
                "redact_url": redact_url,
            },
        }

    def _pan(self, doc: _Doc, batch_id: str, index: int, at: datetime) -> dict[str, object]:
        name, surname, _ = doc.person()
        father = _upper_name(f"{doc.fake.first_name_male()} {surname}")
        born = doc.birth_date()
        roll = doc.rng.random()
        quality = "original" if roll < 0.85 else "xerox_copy" if roll < 0.95 else "photo_of_photo"
        if doc.low:
            quality = "photo_of_photo"
        return {
            "name_as_per_pan": doc.field(name),
            "father_name": doc.field(father),
            "dob": doc.field(_dmy(born)),
            "pan_number": doc.field(doc.pan(surname)),
            "document_quality_flag": doc.field(quality),
        }

    def _driving_license(
        self, doc: _Doc, batch_id: str, index: int, at: datetime
    ) -> dict[str, object]:
        name, _, _ = doc.person()
        born = doc.birth_date()
        place = doc.place()
        earliest = max(_add_years(born, 18), _add_years(doc.today, -20))
        issued = doc.day_between(earliest, doc.today - timedelta(days=30))
        valid_till = _add_years(issued, 20) - timedelta(days=1)
        rto = f"{doc.rng.randint(1, 50):02d}"
        number = f"{place.rto}{rto} {issued.year}{doc.digits(7)}"
        return {
            "dl_number": doc.field(number),
            "name": doc.field(name),
            "date_of_birth": doc.field(_dmy(born)),
            "issue_date": doc.field(_dmy(issued)),
            "valid_till": doc.field(_dmy(valid_till)),
            "state": doc.field(place.state),
        }

    def _voter_id(self, doc: _Doc, batch_id: str, index: int, at: datetime) -> dict[str, object]:
        name, _, gender = doc.person()
        born = doc.birth_date()
        return {
            "voter_id": doc.field(f"{doc.letters(3)}{doc.digits(7)}"),
            "name": doc.field(name),
            "date_of_birth": doc.field(_dmy(born)),
            "gender": doc.field(gender.capitalize()),
        }

    def _passport(self, doc: _Doc, batch_id: str, index: int, at: datetime) -> dict[str, object]:
        name, _, gender = doc.person()
        born = doc.birth_date()
        issued = doc.day_between(
            max(_add_years(doc.today, -10) + timedelta(days=30), _add_years(born, 18)),
            doc.today - timedelta(days=30),
        )
        number = f"{doc.letters(1, _PASSPORT_LETTERS)}{doc.rng.randint(1, 9)}{doc.digits(6)}"
        return {
            "passport_number": doc.field(number),
            "name": doc.field(name),
            "date_of_birth": doc.field(_dmy(born)),
            "place_of_birth": doc.field(doc.place().city.upper()),
            "gender": doc.field(gender[0]),
            "date_of_issue": doc.field(_dmy(issued)),
            "date_of_expiry": doc.field(_dmy(_add_years(issued, 10) - timedelta(days=1))),
            "place_of_issue": doc.field(doc.place().city.upper()),
        }

    def _gst_cert(self, doc: _Doc, batch_id: str, index: int, at: datetime) -> dict[str, object]:
        owner, surname, _ = doc.person()
        constitution, holder = doc.rng.choice(CONSTITUTIONS)
        trade = f"{surname} {doc.rng.choice(TRADES).upper()}"
        legal = {
            "Proprietorship": owner,
            "Partnership": f"M/S {trade}",
            "Private Limited Company": f"{trade} PRIVATE LIMITED",
            "Limited Liability Partnership": f"{trade} LLP",
            "Public Limited Company": f"{trade} LIMITED",
        }[constitution]
        place = doc.place()
        first14 = f"{place.gst}{doc.pan(surname, holder)}{doc.rng.randint(1, 9)}Z"
        address, formatted = doc.address(place)
        issued = doc.day_between(
            max(GST_START, _add_years(doc.today, -8)), doc.today - timedelta(days=30)
        )
        return {
            "gst_number": doc.field(first14 + gstin_check_char(first14)),
            "legal_name": doc.field(legal),
            "trade_name": doc.field(trade),
            "address": doc.field(address),
            "formatted_address": formatted,
            "date_of_issue": doc.field(_dmy(issued)),
            "constitution_of_business": doc.field(constitution),
        }
