package main

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// chiHandler is the app on a chi router. chi's middleware is net/http's, so the
// session middleware goes in with Use as it is; the handlers are the
// ServeMux ones but for the path parameter, read with chi.URLParam.
func (a *app) chiHandler() http.Handler {
	r := chi.NewRouter()
	r.Use(a.sessions)
	r.Get("/count", func(w http.ResponseWriter, r *http.Request) {
		a.writeJSON(w, r, a.count)
	})
	r.Post("/add/{n}", func(w http.ResponseWriter, r *http.Request) {
		a.writeJSON(w, r, func(ctx context.Context) (reply, error) { return a.add(ctx, chi.URLParam(r, "n")) })
	})
	r.Post("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := a.logout(r.Context()); err != nil {
			status, msg := a.failure(err)
			http.Error(w, msg, status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return r
}
