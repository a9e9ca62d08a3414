"""Test people (patients, practitioners, relatives) from a seeded faker: same seed, same people.

Reproducible *content* is what a tester needs to replay a failure; resource
*identities* (URLs) are still unique per run, so re-running a scenario against
a server that kept the previous run's data never collides with it.
"""

from __future__ import annotations

import uuid
import zlib
from datetime import date

from faker import Faker


def seed_for(name: str) -> int:
    """A stable seed from a scenario's name (Python's hash() is salted per process; crc32 is not)."""
    return zlib.crc32(name.encode("utf-8"))


class People:
    """Dutch-looking test persons; one instance per scenario."""

    def __init__(self, seed: int | str | Faker) -> None:
        """`seed`: a number, a name to derive one from, or an already seeded Faker to draw from."""
        if isinstance(seed, Faker):
            self.seed = None
            self.fake = seed
            return
        self.seed = seed_for(seed) if isinstance(seed, str) else int(seed)
        self.fake = Faker("nl_NL")
        self.fake.seed_instance(self.seed)

    @staticmethod
    def unique_id() -> str:
        return uuid.uuid4().hex[:16]

    def _bsn(self) -> str:
        # A number passing the Dutch "elfproef" (test data only; never a real person's BSN by intent).
        while True:
            digits = [self.fake.random_int(0, 9) for _ in range(8)]
            total = sum(d * w for d, w in zip(digits, range(9, 1, -1)))
            last = total % 11
            if last < 10 and digits[0] != 0:
                return "".join(map(str, digits)) + str(last)

    def patient(self) -> dict[str, object]:
        gender = self.fake.random_element(("F", "M"))
        given = self.fake.first_name_female() if gender == "F" else self.fake.first_name_male()
        birth = self.fake.date_of_birth(minimum_age=12, maximum_age=90)
        today = date(2025, 1, 1)  # a fixed day: age must not depend on when the suite runs
        age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
        return {"given": given, "family": self.fake.last_name(), "gender": gender,
                "birth_date": birth.isoformat(), "age": age, "email": self.fake.free_email(), "bsn": self._bsn()}

    def practitioner(self) -> dict[str, object]:
        return {"given": self.fake.first_name(), "family": self.fake.last_name(),
                "agb": f"{self.fake.random_int(10_000_000, 99_999_999)}", "email": self.fake.company_email()}

    def relative(self) -> dict[str, object]:
        gender = self.fake.random_element(("F", "M"))
        given = self.fake.first_name_female() if gender == "F" else self.fake.first_name_male()
        return {"given": given, "family": self.fake.last_name(), "gender": gender}

    def __repr__(self) -> str:
        return f"People(seed={self.seed})"

    def sentence(self) -> str:
        return self.fake.sentence(nb_words=8)

    def subject(self) -> str:
        return self.fake.sentence(nb_words=4).rstrip(".")

    def activity_name(self) -> str:
        return self.fake.catch_phrase()

    def score(self) -> int:
        return self.fake.random_int(0, 42)
