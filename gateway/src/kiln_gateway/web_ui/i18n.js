// German and English. The default follows the browser; a choice is remembered on this device.

const STRINGS = {
  en: {
    "app.name": "kiln",
    "skip": "Skip to content",
    "nav.create": "Create",
    "nav.mine": "Mine",
    "nav.ours": "Ours",
    "nav.research": "Research",
    "lang.label": "Language",
    "session.none": "Not in a workshop",
    "session.in": "Workshop: {title}",

    "create.title": "Make something",
    "create.workflow": "What do you want to make?",
    "create.prompt": "Describe it in your own words",
    "create.prompt.hint": "For example: a red kite over the sea",
    "create.more": "More settings",
    "create.generate": "Generate",
    "create.again": "Make another",
    "create.busy": "Working…",
    "create.noWorkflows": "No workflows are available right now.",
    "create.result": "Your result",
    "create.download": "Download",
    "param.width": "Width (pixels)",
    "param.height": "Height (pixels)",
    "param.color": "Background colour (number, 0xRRGGBB)",
    "param.strength": "How much noise (0 to 1)",
    "param.frames": "Number of frames",
    "param.fps": "Frames per second",
    "param.duration": "Length (seconds)",
    "param.sample_rate": "Sample rate (Hz)",
    "param.channels": "Channels",
    "param.steps": "Steps",
    "param.cfg": "How closely to follow the words",
    "param.checkpoint": "Model file",
    "create.open": "Open in gallery",

    "kind.image": "Picture",
    "kind.animation": "Moving picture",
    "kind.audio": "Sound",
    "kind.video": "Video",

    "status.queued": "Waiting in line",
    "status.running": "Being made",
    "status.storing": "Being saved",
    "status.completed": "Done",
    "status.failed": "Did not work",
    "status.cancelled": "Stopped",
    "progress.label": "Progress",
    "progress.reconnecting": "Connection lost, reconnecting…",

    "fail.title": "This did not work",
    "fail.invalid_workflow": "The machine that makes the pictures cannot run this kind of work.",
    "fail.workflow_unavailable": "The machine that makes the pictures does not have what this needs.",
    "fail.backend_error": "The machine had a problem while making it.",
    "fail.backend_unavailable": "The machine that makes the pictures is not reachable right now.",
    "fail.backend_lost": "The machine lost track of this work.",
    "fail.no_outputs": "The machine finished but made nothing.",
    "fail.timeout": "It took too long, so it was stopped.",
    "fail.storage_failed": "The result could not be saved.",
    "fail.queue_unavailable": "The waiting line is not reachable right now.",
    "fail.cancelled": "It was stopped.",
    "fail.other": "Something went wrong.",
    "fail.details": "What the system says",
    "fail.retry": "You can try again; if it keeps happening, tell the workshop leader.",

    "error.load": "Could not load: {detail}",
    "error.request": "The request failed: {detail}",
    "error.network": "The server cannot be reached. Check the connection and try again.",

    "gallery.mine": "My gallery",
    "gallery.ours": "Our workshop's gallery",
    "gallery.empty": "Nothing here yet.",
    "gallery.more": "Load more",
    "gallery.end": "That is everything.",
    "gallery.loading": "Loading…",
    "gallery.joinFirst": "Join your workshop to see what everyone made.",
    "join.code": "Workshop code",
    "join.submit": "Join",
    "join.joined": "You joined “{title}”.",

    "run.title": "A run",
    "run.prompt": "Prompt",
    "run.workflow": "Workflow",
    "run.params": "Settings",
    "run.status": "Status",
    "run.created": "Created",
    "run.media": "Result",
    "run.noOutputs": "This run has no stored result.",
    "run.blocked": "This item was withheld by a researcher.",
    "run.back": "Back",

    "research.title": "Research",
    "research.token": "Researcher token",
    "research.signin": "Sign in",
    "research.signout": "Sign out",
    "research.badToken": "This token was not accepted: {detail}",
    "research.filters": "Filter runs",
    "research.since": "From (date)",
    "research.until": "To (date)",
    "research.session": "Session id",
    "research.device": "Device id",
    "research.workflow": "Workflow",
    "research.status": "Status",
    "research.any": "Any",
    "research.apply": "Show runs",
    "research.runs": "Runs",
    "research.count": "{count} runs shown",
    "research.open": "Inspect",
    "research.record": "Run record",
    "research.history": "History",
    "research.entities": "Files",
    "research.request": "Request",
    "research.raw": "Full record (JSON)",
    "research.block": "Block",
    "research.blockReason": "Reason for blocking",
    "research.blockConfirm": "Block this file",
    "research.blockedBy": "Blocked: {reason}",
    "research.export": "Export",
    "research.exportStart": "Export the runs this filter selects",
    "research.exportState": "Export {state}: {done} of {total} runs, {bytes}",
    "research.exportDownload": "Download the archive",
    "research.exportFailed": "The export failed: {detail}",
    "research.sessionNew": "Open a workshop session",
    "research.sessionTitle": "Title",
    "research.sessionSafety": "Safety level",
    "research.sessionCreate": "Open session",
    "research.sessionCode": "Code for “{title}”: {code}",
    "col.created": "Created",
    "col.status": "Status",
    "col.workflow": "Workflow",
    "col.prompt": "Prompt",
    "col.device": "Device",
    "col.session": "Session",
    "col.file": "File",
    "col.type": "Type",
    "col.size": "Size",
    "col.sha256": "SHA-256",
    "col.event": "Event",
    "col.at": "When",
    "col.detail": "Detail",
  },
  de: {
    "app.name": "kiln",
    "skip": "Zum Inhalt springen",
    "nav.create": "Erstellen",
    "nav.mine": "Meins",
    "nav.ours": "Unseres",
    "nav.research": "Forschung",
    "lang.label": "Sprache",
    "session.none": "Nicht in einem Workshop",
    "session.in": "Workshop: {title}",

    "create.title": "Etwas erschaffen",
    "create.workflow": "Was möchtest du machen?",
    "create.prompt": "Beschreibe es mit deinen Worten",
    "create.prompt.hint": "Zum Beispiel: ein roter Drachen über dem Meer",
    "create.more": "Weitere Einstellungen",
    "create.generate": "Erzeugen",
    "create.again": "Noch eins machen",
    "create.busy": "Wird gemacht…",
    "create.noWorkflows": "Gerade sind keine Abläufe verfügbar.",
    "create.result": "Dein Ergebnis",
    "create.download": "Herunterladen",
    "param.width": "Breite (Pixel)",
    "param.height": "Höhe (Pixel)",
    "param.color": "Hintergrundfarbe (Zahl, 0xRRGGBB)",
    "param.strength": "Wie viel Rauschen (0 bis 1)",
    "param.frames": "Anzahl der Bilder",
    "param.fps": "Bilder pro Sekunde",
    "param.duration": "Länge (Sekunden)",
    "param.sample_rate": "Abtastrate (Hz)",
    "param.channels": "Kanäle",
    "param.steps": "Schritte",
    "param.cfg": "Wie genau den Worten folgen",
    "param.checkpoint": "Modelldatei",
    "create.open": "In der Galerie öffnen",

    "kind.image": "Bild",
    "kind.animation": "Bewegtes Bild",
    "kind.audio": "Klang",
    "kind.video": "Video",

    "status.queued": "Wartet in der Schlange",
    "status.running": "Wird gemacht",
    "status.storing": "Wird gespeichert",
    "status.completed": "Fertig",
    "status.failed": "Hat nicht geklappt",
    "status.cancelled": "Abgebrochen",
    "progress.label": "Fortschritt",
    "progress.reconnecting": "Verbindung verloren, verbinde neu…",

    "fail.title": "Das hat nicht geklappt",
    "fail.invalid_workflow": "Die Maschine, die die Bilder macht, kann diese Art von Arbeit nicht ausführen.",
    "fail.workflow_unavailable": "Der Maschine, die die Bilder macht, fehlt, was dafür nötig ist.",
    "fail.backend_error": "Die Maschine hatte beim Erzeugen ein Problem.",
    "fail.backend_unavailable": "Die Maschine, die die Bilder macht, ist gerade nicht erreichbar.",
    "fail.backend_lost": "Die Maschine hat diese Arbeit aus den Augen verloren.",
    "fail.no_outputs": "Die Maschine ist fertig, hat aber nichts erzeugt.",
    "fail.timeout": "Es hat zu lange gedauert und wurde abgebrochen.",
    "fail.storage_failed": "Das Ergebnis konnte nicht gespeichert werden.",
    "fail.queue_unavailable": "Die Warteschlange ist gerade nicht erreichbar.",
    "fail.cancelled": "Es wurde abgebrochen.",
    "fail.other": "Etwas ist schiefgegangen.",
    "fail.details": "Was das System meldet",
    "fail.retry": "Du kannst es noch einmal versuchen; wenn es wieder passiert, sag der Workshopleitung Bescheid.",

    "error.load": "Konnte nicht geladen werden: {detail}",
    "error.request": "Die Anfrage ist fehlgeschlagen: {detail}",
    "error.network": "Der Server ist nicht erreichbar. Prüfe die Verbindung und versuche es noch einmal.",

    "gallery.mine": "Meine Galerie",
    "gallery.ours": "Galerie unseres Workshops",
    "gallery.empty": "Hier ist noch nichts.",
    "gallery.more": "Mehr laden",
    "gallery.end": "Das ist alles.",
    "gallery.loading": "Lädt…",
    "gallery.joinFirst": "Tritt deinem Workshop bei, um zu sehen, was alle gemacht haben.",
    "join.code": "Workshop-Code",
    "join.submit": "Beitreten",
    "join.joined": "Du bist „{title}“ beigetreten.",

    "run.title": "Ein Lauf",
    "run.prompt": "Beschreibung",
    "run.workflow": "Ablauf",
    "run.params": "Einstellungen",
    "run.status": "Status",
    "run.created": "Erstellt",
    "run.media": "Ergebnis",
    "run.noOutputs": "Dieser Lauf hat kein gespeichertes Ergebnis.",
    "run.blocked": "Dies wurde von der Forschung zurückgehalten.",
    "run.back": "Zurück",

    "research.title": "Forschung",
    "research.token": "Forschungs-Token",
    "research.signin": "Anmelden",
    "research.signout": "Abmelden",
    "research.badToken": "Dieses Token wurde nicht akzeptiert: {detail}",
    "research.filters": "Läufe filtern",
    "research.since": "Von (Datum)",
    "research.until": "Bis (Datum)",
    "research.session": "Sitzungs-ID",
    "research.device": "Geräte-ID",
    "research.workflow": "Ablauf",
    "research.status": "Status",
    "research.any": "Alle",
    "research.apply": "Läufe anzeigen",
    "research.runs": "Läufe",
    "research.count": "{count} Läufe angezeigt",
    "research.open": "Ansehen",
    "research.record": "Laufprotokoll",
    "research.history": "Verlauf",
    "research.entities": "Dateien",
    "research.request": "Anfrage",
    "research.raw": "Vollständiges Protokoll (JSON)",
    "research.block": "Sperren",
    "research.blockReason": "Grund für die Sperre",
    "research.blockConfirm": "Diese Datei sperren",
    "research.blockedBy": "Gesperrt: {reason}",
    "research.export": "Export",
    "research.exportStart": "Die gefilterten Läufe exportieren",
    "research.exportState": "Export {state}: {done} von {total} Läufen, {bytes}",
    "research.exportDownload": "Archiv herunterladen",
    "research.exportFailed": "Der Export ist fehlgeschlagen: {detail}",
    "research.sessionNew": "Eine Workshop-Sitzung eröffnen",
    "research.sessionTitle": "Titel",
    "research.sessionSafety": "Schutzstufe",
    "research.sessionCreate": "Sitzung eröffnen",
    "research.sessionCode": "Code für „{title}“: {code}",
    "col.created": "Erstellt",
    "col.status": "Status",
    "col.workflow": "Ablauf",
    "col.prompt": "Beschreibung",
    "col.device": "Gerät",
    "col.session": "Sitzung",
    "col.file": "Datei",
    "col.type": "Art",
    "col.size": "Größe",
    "col.sha256": "SHA-256",
    "col.event": "Ereignis",
    "col.at": "Wann",
    "col.detail": "Einzelheiten",
  },
};

export const LANGUAGES = Object.keys(STRINGS);
const STORAGE_KEY = "kiln.lang";

function initialLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && STRINGS[saved]) return saved;
  const preferred = (navigator.languages || [navigator.language || "en"]).map((l) => l.slice(0, 2));
  return preferred.find((l) => STRINGS[l]) || "en";
}

let current = initialLanguage();

export function lang() {
  return current;
}

export function setLang(value) {
  if (!STRINGS[value]) throw new Error(`unknown language ${value}`);
  current = value;
  localStorage.setItem(STORAGE_KEY, value);
  document.documentElement.lang = value;
}

export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key];
  if (text === undefined) throw new Error(`no text for ${key}`);
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

export function has(key) {
  return key in STRINGS[current];
}

export function formatDate(iso) {
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(iso),
  );
}

export function formatBytes(bytes) {
  const units = ["B", "kB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${new Intl.NumberFormat(current, { maximumFractionDigits: unit ? 1 : 0 }).format(value)} ${units[unit]}`;
}
