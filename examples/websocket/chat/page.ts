// The chat's page: every call and notification is typed from the Rust traits in
// `api.rs`, through `api.ts` (generated from them). gotalk.js comes from the server
// (`/gotalk/gotalk.js`); its types from its `gotalk.d.ts`.
import type * as Gotalk from "../../../gotalk/js/gotalk";
import { ChatMessage, EventsService, RoomsClient } from "./api";

declare const gotalk: typeof Gotalk;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const nameInput = $<HTMLInputElement>("name");
const newRoom = $<HTMLInputElement>("new-room");
const textInput = $<HTMLInputElement>("text");

let current = "lobby";
let roomNames: string[] = [];
nameInput.value = localStorage.chatName || `guest-${Math.floor(Math.random() * 1000)}`;
nameInput.onchange = () => {
  localStorage.chatName = nameInput.value;
};

function showRooms(names: string[]): void {
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

function show(message: ChatMessage): void {
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

async function join(room: string): Promise<void> {
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
  },
});

const sock = gotalk
  .connection()
  .on("open", () => {
    $("status").textContent = "online";
    $("status").className = "online";
    void join(current);
  })
  .on("close", () => {
    $("status").textContent = "offline, reconnecting…";
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
    (err: Error) => alert(err.message),
  );
};

newRoom.onkeydown = (e) => {
  if (e.key !== "Enter") return;
  RoomsClient.createRoom(sock, newRoom.value).then(
    (name) => {
      newRoom.value = "";
      void join(name);
    },
    (err: Error) => alert(err.message),
  );
};
