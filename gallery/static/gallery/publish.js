// The publish form: uploads with XMLHttpRequest to show progress, and shows the errors the server answers.
(() => {
  "use strict";
  const form = document.getElementById("publish-form");
  const button = document.getElementById("publish-button");
  const box = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-bar");
  const text = document.getElementById("upload-text");
  const maxBytes = Number(form.dataset.maxBytes);
  const maxSize = form.dataset.maxSize;

  const megabytes = (n) => (n / (1024 * 1024)).toFixed(1) + " MB";

  function clearErrors() {
    for (const list of form.querySelectorAll("ul.errors")) list.replaceChildren();
  }

  function showErrors(errors) {
    for (const [field, messages] of Object.entries(errors)) {
      const list = document.getElementById("errors-" + field) || document.getElementById("errors-__all__");
      for (const message of messages) {
        const item = document.createElement("li");
        item.textContent = message;
        list.append(item);
      }
    }
    box.hidden = true;
    button.disabled = false;
    const first = form.querySelector("ul.errors li");
    if (first) first.scrollIntoView({ block: "center", behavior: "smooth" });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const file = form.elements.file.files[0];
    if (file && file.size > maxBytes) {
      showErrors({ file: [`The file is ${megabytes(file.size)}, larger than the ${maxSize} limit. Remove tables or rows you do not need (then VACUUM) and upload it again.`] });
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.floor((e.loaded / e.total) * 100);
      bar.value = percent;
      text.textContent = e.loaded < e.total
        ? `${percent}% · ${megabytes(e.loaded)} of ${megabytes(e.total)}`
        : `100% · ${megabytes(e.total)} sent. Checking the file…`;
    });
    xhr.addEventListener("load", () => {
      let data;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = { errors: { __all__: [`The server answered with status ${xhr.status}. Try again in a few minutes.`] } };
      }
      if (data.redirect) {
        text.textContent = "Uploaded. Opening the build page…";
        window.location.assign(data.redirect);
      } else {
        showErrors(data.errors || { __all__: [`Unexpected answer (status ${xhr.status}).`] });
      }
    });
    xhr.addEventListener("error", () => showErrors({ __all__: ["The upload was interrupted (network error). Check your connection and try again."] }));
    xhr.addEventListener("abort", () => showErrors({ __all__: ["The upload was cancelled."] }));
    box.hidden = false;
    bar.value = 0;
    text.textContent = "Starting upload…";
    button.disabled = true;
    xhr.send(new FormData(form));
  });
})();
