// Starts GraphiQL from the settings the gateway wrote into the page as JSON. Being a file of
// this origin rather than an inline script, it lets the page's Content-Security-Policy allow
// scripts from this origin only.
(function () {
  "use strict";
  var settings = JSON.parse(document.getElementById("graphiql-settings").textContent);
  var http = new URL(settings.endpoint, window.location.href);
  var websocket = new URL(http.href);
  websocket.protocol = http.protocol === "https:" ? "wss:" : "ws:";
  // The headers editor's JSON goes with every request, and becomes the connection_init
  // payload of each subscription's websocket (graphql-transport-ws), where the gateway
  // reads the same X-API-Key or Authorization it reads from HTTP headers.
  var fetcher = GraphiQL.createFetcher({ url: http.href, subscriptionUrl: websocket.href });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: settings.query,
      defaultHeaders: settings.headers,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
    }),
  );
})();
