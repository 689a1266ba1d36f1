// Plugins not verified with the chosen Datasette version cannot be ticked (the server refuses them too).
(() => {
  const select = document.querySelector("select[name=datasette_version]");
  const sync = () => {
    for (const label of document.querySelectorAll("label[data-verified-with]")) {
      const offered = label.dataset.verifiedWith.split(", ").includes(select.value);
      const box = label.querySelector("input[type=checkbox]");
      box.disabled = !offered;
      if (!offered) box.checked = false;
      label.querySelector(".not-offered").hidden = offered;
      label.classList.toggle("unavailable", !offered);
    }
  };
  select.addEventListener("change", sync);
  sync();
})();
