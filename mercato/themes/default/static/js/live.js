/* Live updates for a signed-in person's pages: one WebSocket to /ws, reconnecting with
   back-off. Keeps the notification bell's unread count current; other parts of the page may
   listen for the "mercato:live" event (detail: the message; {type: "ready"} on each
   connection, when pages catch up on what they missed) and send with window.mercatoLive.send. */
(function () {
  "use strict";
  var bell = document.querySelector("[data-notification-bell]");
  var delay = 1000;
  var socket = null;

  function setUnread(count) {
    if (!bell) { return; }
    var badge = bell.querySelector("[data-unread]");
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = count === 0;
    bell.setAttribute("aria-label", count ? "Notifications, " + count + " unread" : "Notifications");
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws");
    socket.addEventListener("open", function () { delay = 1000; });
    socket.addEventListener("message", function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      if (typeof message.unread === "number") { setUnread(message.unread); }
      document.dispatchEvent(new CustomEvent("mercato:live", { detail: message }));
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4401 || event.code === 4403) { return; }  /* signed out, or not our page */
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  /* Other scripts send up the socket with window.mercatoLive.send({type: …}). */
  window.mercatoLive = {
    send: function (message) {
      if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(message)); }
    }
  };
  if ("WebSocket" in window) { connect(); }
})();
