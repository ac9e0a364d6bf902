package redisbroker

import (
	"context"

	"github.com/heraldhq/herald/internal/broker"
)

// SetTransitionHandler implements broker.Transitions.
func (b *Broker) SetTransitionHandler(h broker.TransitionHandler) {}

// Settle implements broker.Transitions.
func (b *Broker) Settle(ctx context.Context, t broker.Transition) (bool, error) { return false, nil }
