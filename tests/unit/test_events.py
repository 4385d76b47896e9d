from aiops.core.events import Bus, EventType


class Recorder:
    def __init__(self, name, fail=False):
        self.name, self.fail, self.seen = name, fail, []

    def handle(self, event):
        if self.fail:
            raise ConnectionError("redis down")
        self.seen.append(event)


def test_without_sinks_publishing_is_a_no_op():
    bus = Bus(size=1)
    for _ in range(3):
        bus.publish(EventType.DIAGNOSED, "shop/checkout", {})
    assert bus.queue.qsize() == 0 and bus.dropped == 0


def test_a_failing_sink_is_counted_and_the_others_still_get_every_event():
    bus = Bus()
    down, up = Recorder("redis", fail=True), Recorder("history")
    bus.register(down)
    bus.register(up)
    obj = {"metadata": {"uid": "u-1", "generation": 3}}
    for i in range(5):
        bus.publish(EventType.INCIDENT_CREATED, f"shop/i{i}", {"severity": "high"}, obj)
    bus.flush()
    assert [e.key for e in up.seen] == [f"shop/i{i}" for i in range(5)]
    assert (up.seen[0].uid, up.seen[0].generation, up.seen[0].data) == ("u-1", 3, {"severity": "high"})
    assert bus.failures == {"redis": 5}
    assert up.seen[0].wire()["type"] == "INCIDENT_CREATED" and up.seen[0].wire()["at"].endswith("Z")


def test_a_full_queue_drops_and_counts_instead_of_blocking_a_handler():
    bus = Bus(size=2)
    bus.sinks.append(Recorder("slow"))  # registered without its draining thread: nothing leaves the queue
    for i in range(5):
        bus.publish(EventType.GPU_UPDATE, "hub", {"gpus": i})
    assert bus.queue.qsize() == 2 and bus.dropped == 3
