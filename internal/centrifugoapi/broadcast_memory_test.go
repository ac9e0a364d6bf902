package centrifugoapi

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// heapAtFirstPublish records the live heap when the first message reaches
// the broker.
type heapAtFirstPublish struct {
	*broker.Memory
	calls int
	heap  uint64
}

func (b *heapAtFirstPublish) Publish(ctx context.Context, m broker.Message) error {
	if b.calls++; b.calls == 1 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.heap = ms.HeapAlloc
	}
	return nil
}

// A broadcast compacts its data once and builds each channel's message as
// it is published. Building them all first, each with its own copy of the
// data, made a 90 KB request (the body limit is 256 KB) naming a channel
// 20 000 times hold 20 000 × 10 KB = 200 MB at once.
func TestBroadcastBuildsMessagesAsItPublishes(t *testing.T) {
	reg, err := apps.NewRegistry([]apps.App{{ID: "42", Key: "k42", Secret: "s42", APIKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	b := &heapAtFirstPublish{Memory: broker.NewMemory(0)}
	h := hub.New(hub.Config{Broker: b})
	api := New(Config{Apps: reg, Hub: h})
	f := &fixture{t: t, api: api, hub: h}
	data := `{"x":"` + strings.Repeat("y", apps.DefaultMaxEventBytes-16) + `"}`
	body := `{"channels":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 20000), ",") + `],"data":` + data + `}`
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	if status, _ := f.post("/api/broadcast", body); status != 200 {
		t.Fatalf("status %d", status)
	}
	if b.calls != 20000 {
		t.Fatalf("%d published", b.calls)
	}
	held := int64(b.heap) - int64(before.HeapAlloc)
	t.Logf("request body %d bytes; heap held when the first message was published: %d MB", len(body), held>>20)
	if held > 32<<20 {
		t.Fatalf("one %d-byte request held %d MB before its first publish", len(body), held>>20)
	}
}
