package main

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// echoHandler is the app on an echo router. echo.WrapMiddleware installs the
// session middleware as it is: it hands the handlers the middleware's
// request and a Response over the middleware's writer, and echo's Response
// sends the headers on WriteHeader and Write as net/http does, so the
// session's Set-Cookie goes with them. An error a handler returns is
// written by echo's error handler after the middleware has returned; the
// session's headers are in the response by then.
func (a *app) echoHandler() http.Handler {
	e := echo.New()
	e.Use(echo.WrapMiddleware(a.sessions))
	e.GET("/count", func(c echo.Context) error {
		v, err := a.count(c.Request().Context())
		if err != nil {
			return a.echoError(err)
		}
		return c.JSON(http.StatusOK, v)
	})
	e.POST("/add/:n", func(c echo.Context) error {
		v, err := a.add(c.Request().Context(), c.Param("n"))
		if err != nil {
			return a.echoError(err)
		}
		return c.JSON(http.StatusOK, v)
	})
	e.POST("/logout", func(c echo.Context) error {
		if err := a.logout(c.Request().Context()); err != nil {
			return a.echoError(err)
		}
		return c.NoContent(http.StatusNoContent)
	})
	return e
}

// echoError is the error an echo handler returns for err.
func (a *app) echoError(err error) error {
	status, msg := a.failure(err)
	return echo.NewHTTPError(status, msg)
}
