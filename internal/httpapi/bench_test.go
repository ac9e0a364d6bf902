package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/metrics"
	"github.com/heraldhq/herald/internal/pusher"
)

// queueSink stands in for a connection: it takes the shared payload exactly as
// a Pusher session does and counts the bytes it would queue.
type queueSink struct {
	id     string
	queued int
}

func (s *queueSink) SocketID() string { return s.id }
func (s *queueSink) Deliver(p *hub.Publication) {
	s.queued += len(p.Payload(hub.EncodingPusher, pusher.EncodeEvent))
}

// BenchmarkPublish measures the publish path from a signed HTTP request to
// the encoded payload queued on every subscriber: authentication, body
// parsing, validation, one encode and the fan-out.
//
//	go test -run '^$' -bench Publish -benchmem ./internal/httpapi/
func BenchmarkPublish(b *testing.B) { benchPublish(b, nil) }

// BenchmarkPublishObserved is BenchmarkPublish with the REST metrics
// recording every request.
func BenchmarkPublishObserved(b *testing.B) {
	benchPublish(b, metrics.New(metrics.Options{}).ObserveREST)
}

func benchPublish(b *testing.B, observe func(appID, endpoint string, status int, d time.Duration)) {
	for _, subs := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "k", Secret: "s"}})
			if err != nil {
				b.Fatal(err)
			}
			h := hub.New(hub.Config{Broker: broker.NewMemory(0)})
			sinks := make([]queueSink, subs)
			for i := range sinks {
				sinks[i].id = fmt.Sprintf("1.%d", i)
				h.Subscribe("1", "bench", &sinks[i])
			}
			now := time.Now()
			api := New(Config{Apps: reg, Hub: h, Now: func() time.Time { return now }, Observe: observe})
			body := `{"name":"tick","data":"{\"seq\":1,\"payload\":\"0123456789abcdef0123\"}","channel":"bench"}`
			target := "/apps/1/events?" + auth.SignRequest("k", "s", "POST", "/apps/1/events", nil, []byte(body), now).Encode()
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("POST", target, strings.NewReader(body))
				api.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
			if sinks[0].queued == 0 {
				b.Fatal("nothing was delivered")
			}
		})
	}
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
