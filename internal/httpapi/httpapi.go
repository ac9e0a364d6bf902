// Package httpapi serves the Pusher REST API under /apps/{app_id}/.
package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/hub"
)

// Config configures the API.
type Config struct {
	Apps *apps.Registry
	Hub  *hub.Hub
	Log  *slog.Logger
}

// API is the REST API handler.
type API struct {
	cfg Config
}

// New returns the API handler.
func New(cfg Config) *API { return &API{cfg: cfg} }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}
