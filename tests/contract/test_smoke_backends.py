"""The whole happy path of a domestic case, on every backend."""

import pytest

from tests.conftest import BACKENDS, DESK, walk


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_main_path_on_every_backend(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, "back_to_first_provider")
    case = service.case(case_id)
    assert case.state == "back_to_first_provider"
    assert case.facts["consent"]["basis"] == "written" and "dossier_complete_at" in case.facts
    assert service.verify().ok
