"use strict";
(() => {
  // examples/websocket/chat/api.ts
  var RoomsClient = {
    /**
     * The rooms there are, by name.
     */
    rooms(sock2, options = {}) {
      return sock2.request("rooms", null, options);
    },
    /**
     * Creates a room (or finds the one of that name) and tells every page.
     */
    createRoom(sock2, input, options = {}) {
      return sock2.request("create-room", input, options);
    },
    /**
     * Moves the page to a room: its recent messages, and its new ones as they come.
     */
    join(sock2, input, options = {}) {
      return sock2.request("join", input, options);
    },
    /**
     * Says something in a room: every page is told.
     */
    send(sock2, input, options = {}) {
      return sock2.request("send", input, options);
    }
  };
  var EventsService = {
    register(handlers, impl) {
      handlers.handleNotification("message", (input) => impl.message(input));
      handlers.handleNotification("room", (input) => impl.room(input));
    }
  };

  // examples/websocket/chat/page.ts
  var $ = (id) => document.getElementById(id);
  var nameInput = $("name");
  var newRoom = $("new-room");
  var textInput = $("text");
  var current = "lobby";
  var roomNames = [];
  nameInput.value = localStorage.chatName || `guest-${Math.floor(Math.random() * 1e3)}`;
  nameInput.onchange = () => {
    localStorage.chatName = nameInput.value;
  };
  function showRooms(names) {
    roomNames = names;
    $("rooms").innerHTML = "";
    for (const name of names) {
      const b = document.createElement("button");
      b.textContent = `#${name}`;
      if (name === current) b.className = "current";
      b.onclick = () => void join(name);
      $("rooms").appendChild(b);
    }
  }
  function show(message) {
    if (message.room !== current) return;
    const div = document.createElement("div");
    div.className = "msg";
    const who = document.createElement("b");
    who.textContent = `${message.author}: `;
    div.appendChild(who);
    div.appendChild(document.createTextNode(message.text));
    $("messages").appendChild(div);
    $("messages").scrollTop = $("messages").scrollHeight;
  }
  async function join(room) {
    current = room;
    $("title").textContent = `#${room}`;
    const history = await RoomsClient.join(sock, room);
    $("messages").innerHTML = "";
    history.forEach(show);
    showRooms(await RoomsClient.rooms(sock));
  }
  EventsService.register(gotalk.defaultHandlers, {
    message: show,
    room: (name) => {
      if (!roomNames.includes(name)) showRooms([...roomNames, name].sort());
    }
  });
  var sock = gotalk.connection().on("open", () => {
    $("status").textContent = "online";
    $("status").className = "online";
    void join(current);
  }).on("close", () => {
    $("status").textContent = "offline, reconnecting\u2026";
    $("status").className = "offline";
  });
  $("send").onsubmit = (e) => {
    e.preventDefault();
    const text = textInput.value;
    if (!text.trim()) return;
    RoomsClient.send(sock, { room: current, author: nameInput.value, text }).then(
      () => {
        textInput.value = "";
      },
      (err) => alert(err.message)
    );
  };
  newRoom.onkeydown = (e) => {
    if (e.key !== "Enter") return;
    RoomsClient.createRoom(sock, newRoom.value).then(
      (name) => {
        newRoom.value = "";
        void join(name);
      },
      (err) => alert(err.message)
    );
  };
})();
