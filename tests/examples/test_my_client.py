from contracts.clients.deepvue import DeepvueClient
from contracts.harness import Simulator


def test_my_client_waits_out_a_rate_limit(bulksim_app: Simulator) -> None:
    credentials = bulksim_app.credentials("deepvue")
    client = DeepvueClient(
        bulksim_app.client("deepvue"),
        credentials["client_id"],
        credentials["client_secret"],
        sleep=bulksim_app.clock.sleep,  # waiting moves the simulator's clock
        now=bulksim_app.clock.seconds,
    )
    bulksim_app.faults.schedule("deepvue", "rate_limit", retry_after=5, count=2)
    rows = bulksim_app.run_client(client.verify, b"vpa\nrahul.sharma@okaxis\nfail.anil@ybl\n")
    assert [row["status"] for row in rows] == ["SUCCESS", "FAILED"]
    bulksim_app.assert_client_conformant()  # no hot polls, Retry-After honoured, spec kept
