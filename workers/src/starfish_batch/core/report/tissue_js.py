"""The tissue map's script: the payload's transcripts drawn again on a canvas, with a gene picker
(the top genes ticked, any gene added by name, several at once), a density view and zoom into a
FOV (click it). Without JavaScript the server's picture stays; with it, the canvas replaces the
picture once the page has loaded. ``window.tissueMap`` (defined then) lets a test ask what is drawn."""

SCRIPT = r"""
(function(){function init(){var T0=performance.now(),el=document.getElementById('tissue-data');if(!el)return;
var T=JSON.parse(el.textContent);
if(!T.box||!T.points)return;
function u16(s){var b=atob(s),n=b.length>>1,a=new Uint16Array(n);for(var i=0;i<n;
 i++)a[i]=b.charCodeAt(2*i)|(b.charCodeAt(2*i+1)<<8);return a;}
var B=T.box,P=T.points,N=P.n,qx=u16(P.x),qy=u16(P.y),GS=P.gene_start,G=T.genes;
var X=new Float64Array(N),Y=new Float64Array(N),GENE=new Int32Array(N);
for(var g=0;g<G.length;g++)for(var i=GS[g];i<GS[g+1];i++)GENE[i]=g;
for(var i=0;i<N;i++){X[i]=B[0]+qx[i]/65535*(B[1]-B[0]);Y[i]=B[2]+qy[i]/65535*(B[3]-B[2]);}
var D=T.density,DC=D?u16(D.counts):null,DMAX=0;if(DC)for(var i=0;i<DC.length;i++)if(DC[i]>DMAX)DMAX=DC[i];
var cv=document.getElementById('tissue-canvas'),img=document.getElementById('tissue-img'),ctx=cv.getContext('2d');
var W=cv.width,H=cv.height,status=document.getElementById('tissue-status');
var view=B.slice(),mode=T.exact?'genes':'density',picked=[],drawn=[],zoomed=null;
var FN=T.fov_names||[],FA=T.fov_boxes?new Float32Array(Uint8Array.from(atob(T.fov_boxes),
 function(c){return c.charCodeAt(0);}).buffer):[],FE={};
for(var f=0;f<FN.length;f++)FE[FN[f]]=[FA[4*f],FA[4*f+1],FA[4*f+2],FA[4*f+3]];
var PAL=T.palette,TOP=T.top,OTHER='rgb(200,200,200)';
var RAMP=[[255,255,217],[199,233,180],[65,182,196],[34,94,168],[37,52,148],[8,29,88]];
function rgb(p){return 'rgb('+p[0]+','+p[1]+','+p[2]+')';}
function scale(){return Math.min(W/(view[1]-view[0]),H/(view[3]-view[2]));}
function colourOf(g){if(picked.length){var k=picked.indexOf(g);return k<0?null:rgb(PAL[k%PAL.length]);}
var k=TOP.indexOf(g);return k<0?OTHER:rgb(PAL[k]);}
var DI=null;
function densityImage(){var c=document.createElement('canvas');c.width=D.w;c.height=D.h;
 var x=c.getContext('2d'),im=x.createImageData(D.w,D.h),lm=Math.log(1+DMAX)||1;
 for(var i=0;i<DC.length;i++){if(!DC[i])continue;var t=(0.15+0.85*Math.log(1+DC[i])/lm)*(RAMP.length-1);
  var k=Math.min(Math.floor(t),RAMP.length-2),f=t-k,a=RAMP[k],b=RAMP[k+1],o=4*i;
  im.data[o]=a[0]+(b[0]-a[0])*f;im.data[o+1]=a[1]+(b[1]-a[1])*f;im.data[o+2]=a[2]+(b[2]-a[2])*f;im.data[o+3]=255;}
 x.putImageData(im,0,0);return c;}
function draw(){var s=scale();ctx.fillStyle='#fff';ctx.fillRect(0,0,W,H);drawn=[];
var inside=function(x,y){return x>=view[0]&&x<=view[1]&&y>=view[2]&&y<=view[3];};
if(mode==='density'&&D){if(!DI)DI=densityImage();ctx.imageSmoothingEnabled=false;
 ctx.drawImage(DI,(B[0]-view[0])*s,(B[2]-view[2])*s,D.w*D.side*s,D.h*D.side*s);}
if(mode==='genes'||zoomed){var genes=picked.length?picked.slice():null;
 if(!genes){genes=[];for(var g=0;g<G.length;g++)if(TOP.indexOf(g)<0)genes.push(g);for(var k=TOP.length-1;k>=0;
 k--)genes.push(TOP[k]);}
 var r=Math.max(1.5,Math.min(4,6000/Math.max(1,N)*s));
 for(var k=0;k<genes.length;k++){var g=genes[k],col=colourOf(g);if(!col)continue;ctx.fillStyle=col;
  for(var i=GS[g];i<GS[g+1];i++){if(!inside(X[i],Y[i]))continue;
 ctx.fillRect((X[i]-view[0])*s-r/2,(Y[i]-view[2])*s-r/2,r,r);drawn.push(i);}}}
ctx.strokeStyle='#555';ctx.lineWidth=1;
for(var f=0;f<FN.length;f++){var e=FE[FN[f]];
 ctx.strokeRect((e[0]-view[0])*s+.5,(e[2]-view[2])*s+.5,(e[1]-e[0])*s,(e[3]-e[2])*s);}
status.textContent=(zoomed?'FOV '+zoomed+': ':'')+drawn.length.toLocaleString()+' transcripts drawn'+
 (picked.length?' of '+picked.map(function(g){return G[g];}).join(', '):'')+(T.exact?'':' (a sample)');}
function pick(g){if(g<0||picked.indexOf(g)>=0)return;picked.push(g);mode='genes';sync();draw();}
function unpick(g){var k=picked.indexOf(g);if(k>=0)picked.splice(k,1);sync();draw();}
function sync(){document.getElementById('tissue-mode').value=mode;
var boxes=document.querySelectorAll('#tissue-picks input');for(var i=0;i<boxes.length;
 i++)boxes[i].checked=picked.indexOf(G.indexOf(boxes[i].value))>=0;}
function zoom(name){var e=FE[name];if(!e)return;var px=(e[1]-e[0])*.05,py=(e[3]-e[2])*.05;
var w=e[1]-e[0]+2*px,h=e[3]-e[2]+2*py,cx=(e[0]+e[1])/2,cy=(e[2]+e[3])/2,ratio=W/H;
if(w/h<ratio)w=h*ratio;else h=w/ratio;view=[cx-w/2,cx+w/2,cy-h/2,cy+h/2];zoomed=name;draw();}
function reset(){view=B.slice();zoomed=null;draw();}
cv.addEventListener('click',function(ev){var r=cv.getBoundingClientRect(),s=scale();
var x=view[0]+(ev.clientX-r.left)*(W/r.width)/s,y=view[2]+(ev.clientY-r.top)*(H/r.height)/s;
for(var f=0;f<FN.length;f++){var e=FE[FN[f]];if(x>=e[0]&&x<=e[1]&&y>=e[2]&&y<=e[3]){zoom(FN[f]);return;}}});
document.getElementById('tissue-mode').addEventListener('change',function(e){mode=e.target.value;draw();});
document.getElementById('tissue-search').addEventListener('change',function(e){
 var g=G.indexOf(e.target.value.trim());
if(g<0){status.textContent='no gene named '+e.target.value;return;}pick(g);e.target.value='';});
document.getElementById('tissue-picks').addEventListener('change',function(e){var g=G.indexOf(e.target.value);
if(e.target.checked)pick(g);else unpick(g);});
document.getElementById('tissue-clear').addEventListener('click',function(){picked=[];sync();draw();});
document.getElementById('tissue-reset').addEventListener('click',reset);
document.getElementById('tissue-controls').hidden=false;img.hidden=true;cv.hidden=false;sync();draw();
window.tissueMap={
 points:function(){var o=[];for(var i=0;i<N;i++)o.push([X[i],Y[i],G[GENE[i]]]);return o;},
 drawn:function(){return drawn.map(function(i){return [X[i],Y[i],G[GENE[i]]];});},
 nDrawn:function(){return drawn.length;},zoom:zoom,reset:reset,
 picked:function(){return picked.map(function(g){return G[g];});},ms:performance.now()-T0};}
// after the load event: the server's picture is on the page by then, the canvas replaces it
if(document.readyState==='complete')setTimeout(init,0);
else window.addEventListener('load',function(){setTimeout(init,0);});
})();
"""
