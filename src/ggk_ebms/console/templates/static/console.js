// The console's only script: upload progress and refreshing the batches table. Everything works
// without it too (plain form posts).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const bar = document.getElementById("voortgang");
      const status = document.getElementById("upload-status");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
      xhr.setRequestHeader("X-Requested-With", "fetch");
      bar.hidden = false;
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) { bar.value = Math.round((100 * e.loaded) / e.total); }
      });
      xhr.upload.addEventListener("load", () => { status.textContent = "Geüpload; bezig met verwerken…"; });
      xhr.addEventListener("load", () => {
        if (xhr.status === 200) {
          window.location.assign(JSON.parse(xhr.responseText).verslag);
        } else {
          document.open(); document.write(xhr.responseText); document.close();
        }
      });
      xhr.addEventListener("error", () => { status.textContent = "Het uploaden is mislukt."; });
      xhr.send(new FormData(form));
    });
  }
  const refresh = document.getElementById("ververs");
  if (refresh) {
    refresh.addEventListener("click", async () => {
      const response = await fetch(refresh.dataset.url, { credentials: "same-origin" });
      if (response.ok) {
        const html = await response.text();
        const doc = new DOMParser().parseFromString(html, "text/html");
        const table = doc.querySelector("table");
        if (table) { document.getElementById("batches").replaceChildren(table); }
      }
    });
  }
});
