//go:build !linux

package bench

import (
	"context"
	"errors"
	"net"
)

// The raw dialer needs the epoll reader, which needs Linux.
func (*rawTarget) connect(net.IP) (int, error) { return -1, errors.New("no raw dialing off Linux") }

func (p *pool) openRaw(context.Context, int, *rawTarget, dialSpec) (*conn, error) {
	return nil, errors.New("no raw dialing off Linux")
}
