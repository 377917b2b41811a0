// Command quickstart is the README's quick start, compiled: a test keeps
// the two the same. Run it with go run ./examples/quickstart and try
// curl -c jar -b jar -X POST 'http://127.0.0.1:8080/?item=tea'.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

type Cart struct{ Items []string }

func main() {
	eng, err := engine.New(engine.Options{}) // zero options: sane defaults
	if err != nil {
		log.Fatal(err)
	}
	carts, err := engine.Register[Cart](eng, "SESSION_ID", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}), // server-side: only the ID travels
	})
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := transport.Middleware(transport.Cookie(carts, transport.CookieConfig{}))
	if err != nil {
		log.Fatal(err) // misconfiguration (a __Host- cookie without Secure, ...) fails here
	}
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: sessions(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			cart, err := carts.Update(r.Context(), func(c *Cart) error { // atomic for this session
				c.Items = append(c.Items, r.URL.Query().Get("item"))
				return nil
			})
			switch {
			case errors.Is(err, engine.ErrRenewed): // raced its own login: the client has the new ID
				http.Error(w, "retry", http.StatusConflict)
			case err != nil: // engine.ErrStorage, a deadline, ...
				http.Error(w, "try again", http.StatusServiceUnavailable)
			default:
				fmt.Fprintln(w, len(cart.Items))
			}
		}))}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		<-stop
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	if err := eng.Close(context.Background()); err != nil { // acknowledged writes are stored
		log.Fatal(err)
	}
}
