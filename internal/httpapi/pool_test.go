package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/testkit"
)

// TestPooledBodiesDoNotLeak: bodies are read into pooled buffers, reused
// by the next request as soon as a publish returns. Many clients publish
// distinct payloads at once, of sizes that make buffers grow and be reused
// for shorter bodies, by both decoders, single and batched; once all are
// done, every subscriber holds exactly the bytes published to it. An event
// that kept a slice of its request's buffer would by then hold another
// request's bytes.
func TestPooledBodiesDoNotLeak(t *testing.T) {
	const clients, requests = 8, 40
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "k", Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: broker.NewMemory(0)})
	api := New(Config{Apps: reg, Hub: h, Observe: func(string, string, int, time.Duration) {}})
	srv := httptest.NewServer(api)
	defer srv.Close()

	// payload is request i of client c: its own bytes, of a size from a
	// few bytes to most of the event limit.
	payload := func(c, i int) string {
		fill := strings.Repeat(string(rune('a'+(c*7+i)%26)), (c*1237+i*911)%9000)
		return fmt.Sprintf("%d/%d/%s/%d", c, i, fill, c*i)
	}
	// event is the JSON of one event carrying data; odd requests spell a
	// letter as a \u escape, which the fast decoder leaves to
	// encoding/json.
	event := func(ch, data string, slow bool) string {
		enc := data
		if slow {
			enc = strings.Replace(data, "/", `\u002f`, 1)
		}
		return `{"name":"e","channel":"` + ch + `","data":"` + enc + `"}`
	}
	subs := make([][2]*testkit.Subscriber, clients)
	for c := range subs {
		for k := range subs[c] {
			subs[c][k] = &testkit.Subscriber{ID: fmt.Sprintf("%d.%d", c, k)}
			h.Subscribe("1", fmt.Sprintf("c%d-%d", c, k), subs[c][k])
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			client := &http.Client{}
			for i := range requests {
				ch0, ch1 := fmt.Sprintf("c%d-0", c), fmt.Sprintf("c%d-1", c)
				path, body := "/apps/1/events", event(ch0, payload(c, i), i%2 == 1)
				if i%3 == 2 {
					path = "/apps/1/batch_events"
					body = `{"batch":[` + event(ch0, payload(c, i), i%2 == 1) + `,` + event(ch1, payload(c, i+requests), i%2 == 0) + `]}`
				}
				q := auth.SignRequest("k", "s", "POST", path, nil, []byte(body), time.Now())
				resp, err := client.Post(srv.URL+path+"?"+q.Encode(), "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("client %d request %d: %d %s", c, i, resp.StatusCode, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for c := range clients {
		var want [2][]string
		for i := range requests {
			want[0] = append(want[0], payload(c, i))
			if i%3 == 2 {
				want[1] = append(want[1], payload(c, i+requests))
			}
		}
		for k, s := range subs[c] {
			got := s.Messages()
			if len(got) != len(want[k]) {
				t.Fatalf("channel c%d-%d got %d events, want %d", c, k, len(got), len(want[k]))
			}
			for i, m := range got {
				if m.Data != want[k][i] || m.Event != "e" || m.Channel != fmt.Sprintf("c%d-%d", c, k) {
					t.Fatalf("channel c%d-%d event %d: got %q on %q (%d bytes), want %q (%d bytes)",
						c, k, i, truncate(m.Data, 40), m.Channel, len(m.Data), truncate(want[k][i], 40), len(want[k][i]))
				}
			}
		}
	}
}
