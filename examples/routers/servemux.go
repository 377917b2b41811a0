package main

import (
	"context"
	"encoding/json"
	"net/http"
)

// serveMuxHandler is the app on net/http's ServeMux, with Go 1.22's method and
// path patterns. The middleware wraps the whole mux; it may as well wrap
// single routes (mux.Handle("POST /add/{n}", a.sessions(h))): the request
// it passes on keeps the matched pattern, so r.PathValue still works.
func (a *app) serveMuxHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, r *http.Request) {
		a.writeJSON(w, r, a.count)
	})
	mux.HandleFunc("POST /add/{n}", func(w http.ResponseWriter, r *http.Request) {
		a.writeJSON(w, r, func(ctx context.Context) (reply, error) { return a.add(ctx, r.PathValue("n")) })
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := a.logout(r.Context()); err != nil {
			status, msg := a.failure(err)
			http.Error(w, msg, status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return a.sessions(mux)
}

// writeJSON answers with what op returns for the request's context, or
// with its failure.
func (a *app) writeJSON(w http.ResponseWriter, r *http.Request, op func(context.Context) (reply, error)) {
	v, err := op(r.Context())
	if err != nil {
		status, msg := a.failure(err)
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
