import pytest

from tests.conftest import BACKENDS, DESK


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_main_path_on_every_backend(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    for event in ("refer", "receive_dossier", "review", "return_advice", "hand_back"):
        service.fire(case_id, event, actor=DESK)
    assert service.case(case_id).state == "back_to_first_provider"
    assert service.verify().ok
