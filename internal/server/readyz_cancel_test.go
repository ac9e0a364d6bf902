package server

import (
	"context"
	"log/slog"
	"testing"

	"github.com/heraldhq/herald/internal/broker"
)

// TestReadyzHealthOutlivesTheProbe: the broker health check's answer is
// shared by every /readyz for a second, so a probe that went away (its
// request's context cancelled) must not make it: a client that sent
// GET /readyz and closed at once had the node report "broker
// unavailable" to its load balancer's probes for the next second. (Both
// brokers' Ping fail once their context has ended.)
func TestReadyzHealthOutlivesTheProbe(t *testing.T) {
	s := &Server{broker: broker.NewMemory(0), log: slog.New(slog.DiscardHandler)}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.brokerHealth(gone); err != nil {
		t.Fatalf("health check of a probe that went away: %v", err)
	}
	if err := s.brokerHealth(context.Background()); err != nil {
		t.Fatalf("the next probe's answer: %v", err)
	}
}
