//go:build !linux

package bench

import (
	"context"
	"errors"
)

const floorSupported = false

type floorServer struct{}

func startFloor(context.Context, string, int) (*floorServer, error) {
	return nil, errors.New("the floor server needs Linux (epoll, accept4)")
}

func (*floorServer) Wait() {}

func (*floorServer) Addr() string { return "" }
