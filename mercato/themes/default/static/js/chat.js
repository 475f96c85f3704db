/* A conversation page, live: messages arrive without reloading, sending goes over the API
   (the form still works without this), the other person's typing and read receipts show. */
(function () {
  "use strict";
  var thread = document.querySelector("[data-chat]");
  if (!thread) { return; }
  var id = thread.dataset.conversation, me = thread.dataset.me, csrf = thread.dataset.csrf;
  var list = thread.querySelector("[data-messages]");
  var status = thread.querySelector("[data-status]");
  var form = thread.querySelector("[data-chat-form]");
  var typingTimer = null, lastTyping = 0;

  function api(path, body) {
    return fetch("/api/v1/conversations/" + id + path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    });
  }

  function lastId() {
    var items = list.querySelectorAll("[data-message]");
    return items.length ? items[items.length - 1].dataset.message : null;
  }

  function show(message) {
    if (list.querySelector('[data-message="' + message.id + '"]')) { return; }
    var empty = list.querySelector("[data-empty]");
    if (empty) { empty.remove(); }
    var item = document.createElement("li");
    item.className = "chat-message" + (message.sender_id === me ? " is-mine" : "");
    item.dataset.message = message.id;
    item.dataset.at = message.created_at;
    var bubble = document.createElement("div");
    bubble.className = "chat-bubble";
    bubble.innerHTML = message.html;  /* rendered and sanitised by the server */
    (message.files || []).forEach(function (file) {
      var link = document.createElement("a");
      link.className = "chat-file";
      link.href = file.url;
      link.setAttribute("download", "");
      link.textContent = file.filename;
      bubble.appendChild(link);
    });
    var meta = document.createElement("span");
    meta.className = "chat-meta";
    meta.textContent = "just now";
    item.appendChild(bubble);
    item.appendChild(meta);
    list.appendChild(item);
    item.scrollIntoView({ block: "end" });
    if (message.sender_id !== me) {
      status.textContent = "";  /* they stopped typing: here it is */
      if (document.visibilityState === "visible") { api("/read", { message_id: message.id }); }
    }
  }

  function showRead(readAt) {
    thread.dataset.otherRead = readAt;
    var mine = list.querySelectorAll(".chat-message.is-mine");
    var seen = null;
    var until = Date.parse(readAt);
    mine.forEach(function (item) { if (Date.parse(item.dataset.at) <= until) { seen = item; } });
    list.querySelectorAll("[data-seen]").forEach(function (el) { el.remove(); });
    if (seen) {
      var mark = document.createElement("span");
      mark.className = "chat-seen";
      mark.dataset.seen = "";
      mark.textContent = "Seen";
      seen.appendChild(mark);
    }
  }

  document.addEventListener("mercato:live", function (event) {
    var message = event.detail;
    if (message.type === "message" && message.message.conversation_id === id) { show(message.message); }
    if (message.type === "message_changed" && message.message.conversation_id === id) {
      var item = list.querySelector('[data-message="' + message.message.id + '"] .chat-bubble');
      if (item) { item.innerHTML = message.message.deleted ? "<em>Message deleted</em>" : message.message.html; }
    }
    if (message.type === "read" && message.conversation_id === id && message.user_id !== me) { showRead(message.read_at); }
    if (message.type === "presence" && message.user_id === thread.dataset.other) {
      var presence = thread.querySelector(".chat-presence");
      presence.textContent = message.online ? "online" : "last seen just now";
      presence.classList.toggle("is-online", message.online);
    }
    if (message.type === "typing" && message.conversation_id === id) {
      status.textContent = "Typing…";
      window.clearTimeout(typingTimer);
      typingTimer = window.setTimeout(function () { status.textContent = ""; }, 4000);
    }
    if (message.type === "ready") {  /* after a reconnect: fetch what was missed */
      var after = lastId();
      fetch("/api/v1/conversations/" + id + "/messages" + (after ? "?after=" + after : ""), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (page) { page.items.forEach(show); });
    }
  });

  if (form) {
    var box = form.querySelector("textarea");
    box.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastTyping > 2500 && window.mercatoLive) { lastTyping = now; window.mercatoLive.send({ type: "typing", conversation_id: id }); }
    });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
    });
    var files = form.querySelector("[data-chat-files]");
    form.addEventListener("submit", function (event) {
      if (files && files.files.length) { return; }  /* with files: the form posts as it is */
      event.preventDefault();
      var body = box.value.trim();
      if (!body) { return; }
      api("/messages", { body: body }).then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { status.textContent = data.detail || "The message was not sent."; return; }
          box.value = "";
          status.textContent = "";
          show(data);
        });
      }).catch(function () { form.submit(); });
    });
  }
  if (thread.dataset.otherRead) { showRead(thread.dataset.otherRead); }
  list.lastElementChild && list.lastElementChild.scrollIntoView({ block: "end" });
})();
