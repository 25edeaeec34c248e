"""Potential duplicates: flagged by `dhis2.find` (duplicates) and by `dhis2.flag_duplicate`.

The fake DHIS-2 and the helpers these tests share are in `tests/dhis2_fakes.py`.
"""

from __future__ import annotations

import pytest
from tests.dhis2_fakes import CODE, context_for, fake, settings_for

from palabre.errors import ActionError
from palabre_dhis2 import find, flag_duplicate, register

__all__ = ["fake"]  # fixtures from tests/dhis2_fakes.py


@pytest.mark.anyio
async def test_two_entities_with_one_code_are_flagged_as_potential_duplicates(fake, tmp_path):
    first, second = fake.seed(CODE), fake.seed(CODE)
    context = context_for(settings_for(fake.url, tmp_path))
    result = await find.find({"value": CODE}, context)
    assert result == {"found": True, "count": 2, "ids": [first, second]}
    (post,) = fake.seen("POST", "/api/potentialDuplicates")
    assert post.body == {"original": first, "duplicate": second}
    assert fake.duplicates == {(first, second)}
    again = await register.register({"value": CODE}, context)
    assert again == {"status": "exists", "id": first}, "an already-flagged pair (409) is fine"
    assert len(fake.seen("POST", "/api/potentialDuplicates")) == 2


@pytest.mark.anyio
async def test_flag_duplicate_action(fake, tmp_path):
    first, second = fake.seed(CODE), fake.seed("OTHERCODE1")
    context = context_for(settings_for(fake.url, tmp_path))
    arguments = {"original": first, "duplicate": second}
    assert await flag_duplicate.flag(arguments, context) == {"status": "flagged"}
    assert await flag_duplicate.flag(arguments, context) == {"status": "already_flagged"}
    with pytest.raises(ActionError, match="two different"):
        await flag_duplicate.flag({"original": first, "duplicate": "nope"}, context)
