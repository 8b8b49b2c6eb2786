from contracts.clients.deepvue import DeepvueClient
from contracts.strategies import fuzz


@fuzz("deepvue", max_examples=25)
def test_my_client_survives_whatever_deepvue_does(bulksim_app, scenario):
    scenario.apply(bulksim_app)  # fresh state, then this scenario's timing and faults
    credentials = bulksim_app.credentials("deepvue")
    client = DeepvueClient(
        bulksim_app.client("deepvue"),  # an httpx.Client pointed at the simulated Deepvue
        credentials["client_id"],
        credentials["client_secret"],
        sleep=bulksim_app.clock.sleep,  # waiting moves the simulator's clock: no real sleeps
        now=bulksim_app.clock.seconds,
    )
    rows = bulksim_app.run_client(client.verify, scenario.input())
    assert [row["vpa"] for row in rows] == list(scenario.items)
    bulksim_app.assert_client_conformant()
